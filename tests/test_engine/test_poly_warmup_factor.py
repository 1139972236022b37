# Copyright (c) OpenMMLab. All rights reserved.
"""Tests for poly_warmup_factor (algorithm.md §9.1 test values)."""
import pytest

from mmseg_dupl.engine.schedulers.poly_warmup_factor import poly_warmup_factor


@pytest.mark.parametrize('step, expected',
                         [(0, 6.0e-11), (199, 7.960e-06), (1999, 5.457e-05),
                          (7999, 3.789e-05), (19999, 8.077e-09),
                          (1499, 5.996e-05), (1500, 5.593e-05)])
def test_poly_warmup_factor_spec_values(step, expected):
    lr = 6e-5 * poly_warmup_factor(step)
    assert lr == pytest.approx(expected, rel=1e-3)


def test_poly_warmup_factor_formula_branches():
    # Warm-up is linear in the step from the ratio to 1.
    assert poly_warmup_factor(0, 10, 100, 0.1, 1.0) == pytest.approx(0.1)
    assert poly_warmup_factor(5, 10, 100, 0.1, 1.0) == pytest.approx(0.55)
    # After warm-up the poly uses the absolute step (1 - 10/100).
    assert poly_warmup_factor(10, 10, 100, 0.1, 1.0) == pytest.approx(0.9)
    assert poly_warmup_factor(50, 10, 100, 0.1, 2.0) == pytest.approx(0.25)
    # No warm-up: step 0 gives the full lr.
    assert poly_warmup_factor(0, 0, 100) == 1.0


def test_poly_warmup_factor_frozen_after_max_iters():
    last = poly_warmup_factor(19999)
    assert poly_warmup_factor(20000) == last
    assert poly_warmup_factor(25000) == last


@pytest.mark.parametrize('kwargs', [
    dict(step=-1),
    dict(step=0, warmup_iters=30, max_iters=20),
    dict(step=0, warmup_iters=-1),
    dict(step=0, warmup_iters=0, max_iters=0),
])
def test_poly_warmup_factor_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError, match='poly_warmup_factor'):
        poly_warmup_factor(**kwargs)
