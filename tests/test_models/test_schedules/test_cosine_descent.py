# Copyright (c) OpenMMLab. All rights reserved.
"""Tests for cosine_descent (algorithm.md §7 test values)."""
import math

import pytest
import torch

from mmseg_dupl.models.schedules.cosine_descent import cosine_descent

# VOC: tau 0.70 -> 0.55 between cam_iters=2000 and max_iters=20000.
VOC_CASES = [(1999, 0.70), (2000, 0.70), (6000, 0.682451), (11000, 0.624993),
             (15000, 0.576784), (19999, 0.55)]
# COCO: 0.65 -> 0.55 between the hard-coded 12000 and 80000.
COCO_CASES = [(46000, 0.599999), (79999, 0.55)]


@pytest.mark.parametrize('n, expected', VOC_CASES)
def test_cosine_descent_voc_spec_values(n, expected):
    value = cosine_descent(0.70, 0.55, n - 2000, 20000 - 2000)
    assert isinstance(value, float)
    assert value == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize('n, expected', COCO_CASES)
def test_cosine_descent_coco_spec_values(n, expected):
    value = cosine_descent(0.65, 0.55, n - 12000, 80000 - 12000)
    assert value == pytest.approx(expected, abs=1e-6)


def test_cosine_descent_hand_computed_small_total():
    # total=3 -> divisor 2: step 1 is the half-way point cos(pi/2) = 0.
    assert cosine_descent(1.0, 0.0, 1, 3) == pytest.approx(0.5)
    assert cosine_descent(1.0, 0.0, 0, 3) == 1.0
    assert cosine_descent(1.0, 0.0, 2, 3) == pytest.approx(0.0)
    assert cosine_descent(1.0, 0.0, 3, 3) == 0.0
    assert cosine_descent(1.0, 0.0, -5, 3) == 1.0
    # total=4 -> step 1: (1 - cos(pi/3)) / 2 = 0.25 of the way.
    assert cosine_descent(2.0, 6.0, 1, 4) == pytest.approx(3.0)


def test_cosine_descent_per_class_target():
    target = torch.tensor([0.70, 0.55, 0.60], dtype=torch.float64)
    mid = cosine_descent(0.70, target, 9000, 18000)
    ratio = (1 - math.cos(math.pi * 9000 / 17999)) / 2
    expected = 0.70 + (target - 0.70) * ratio
    assert mid.shape == (3, )
    torch.testing.assert_close(mid, expected)
    # A class whose target equals start never moves.
    assert mid[0].item() == pytest.approx(0.70)
    # Clamped branches also come back per class, same dtype.
    before = cosine_descent(0.70, target, -1, 18000)
    after = cosine_descent(0.70, target, 18000, 18000)
    torch.testing.assert_close(before, torch.full_like(target, 0.70))
    torch.testing.assert_close(after, target)


def test_cosine_descent_tensor_start_and_target():
    start = torch.tensor([0.7, 0.8])
    target = torch.tensor([0.5, 0.8])
    value = cosine_descent(start, target, 1, 3)
    torch.testing.assert_close(value, torch.tensor([0.6, 0.8]))


def test_cosine_descent_rejects_short_total():
    with pytest.raises(ValueError, match='total'):
        cosine_descent(0.7, 0.55, 0, 1)
