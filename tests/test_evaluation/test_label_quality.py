# Copyright (c) OpenMMLab. All rights reserved.
"""LabelQuality on hand-computed label maps."""
import math

import pytest
import torch

from mmseg_dupl.evaluation.label_quality import LabelQuality

CLASSES = ('background', 'a', 'b', 'c')


def test_scores_on_labelled_pixels_with_coverage_and_over_activation():
    quality = LabelQuality(num_classes=4)
    pred = torch.tensor([[0, 1, 255], [2, 2, 1]])
    gt = torch.tensor([[0, 1, 1], [2, 255, 0]])
    quality.add(pred, gt)
    scores = quality.scores(CLASSES)
    # 5 pixels with GT; the unlabelled (0, 2) leaves 4: bg I=1 U=2,
    # a I=1 U=2 (labelled at (0, 1) and (1, 2), the latter on bg), b I=1 U=1
    assert scores['coverage'] == 80.
    assert scores['mIoU'] == pytest.approx(100 * (0.5 + 0.5 + 1) / 3,
                                           abs=0.01)
    # half of the 'a' labels are outside 'a'; 'c' is never labelled
    assert scores['over_activation.a'] == 50.
    assert scores['over_activation.b'] == 0.
    assert 'over_activation.c' not in scores
    assert scores['over_activation'] == 25.


def test_areas_add_up_over_images_and_nothing_labelled_is_nan():
    quality = LabelQuality(num_classes=2)
    quality.add(torch.full((2, 2), 255), torch.ones(2, 2, dtype=torch.long))
    scores = quality.scores(('background', 'a'))
    assert scores['coverage'] == 0. and math.isnan(scores['mIoU'])
    quality.add(torch.ones(2, 2, dtype=torch.long),
                torch.ones(2, 2, dtype=torch.long))
    scores = quality.scores(('background', 'a'))
    assert scores['coverage'] == 50. and scores['mIoU'] == 100.
    with pytest.raises(ValueError, match='differ in size'):
        quality.add(torch.zeros(2, 3), torch.zeros(2, 2))
