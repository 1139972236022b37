# Copyright (c) OpenMMLab. All rights reserved.
"""benchmarks/bench_toy_label_ceiling.py: the token-grid oracle."""
import os.path as osp
import sys

import numpy as np

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(REPO, 'benchmarks'))

from bench_toy_label_ceiling import (iou_per_class,  # noqa: E402
                                     token_oracle_prediction)


def _scene() -> np.ndarray:
    """64x64: a 24x24 block of class 1 and a 2 px wide bar of class 2."""
    gt = np.zeros((64, 64), np.uint8)
    gt[8:32, 8:32] = 1
    gt[40:60, 45:47] = 2
    return gt


def _iou(gt: np.ndarray, pred: np.ndarray, num_classes: int = 3):
    return iou_per_class([(pred, gt)], num_classes)


def test_stride_one_at_full_size_is_the_ground_truth():
    gt = _scene()
    pred = token_oracle_prediction(gt, (64, 64), 1, 3)
    np.testing.assert_array_equal(pred, gt)


def test_a_coarse_grid_loses_the_thin_bar_but_keeps_the_block():
    gt = _scene()
    iou = _iou(gt, token_oracle_prediction(gt, (64, 64), 8, 3))
    assert iou[1] > 0.8
    assert iou[2] < 0.3  # 2 px of an 8 px token: background wins


def test_ignored_pixels_do_not_vote():
    """A token of 4 labelled pixels and 60 ignored ones is the class of
    those 4: ignored pixels count for no class, background included."""
    gt = np.zeros((64, 64), np.uint8)
    gt[:16, :16] = 255
    gt[2:4, 2:4] = gt[2:4, 10:12] = gt[10:12, 2:4] = gt[10:12, 10:12] = 2
    pred = token_oracle_prediction(gt, (64, 64), 8, 3)
    assert pred[4, 4] == 2 and pred[7, 7] == 2
    assert pred[40, 40] == 0
