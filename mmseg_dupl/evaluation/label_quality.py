# Copyright (c) OpenMMLab. All rights reserved.
"""Quality of label maps that may leave pixels unlabelled (pseudo labels):
IoU on the pixels they label, their coverage and over-activation."""
from typing import Dict, Sequence

import numpy as np
import torch
from mmseg.evaluation.metrics import IoUMetric
from torch import Tensor


class LabelQuality:
    """Accumulates label maps against ground truth and scores them as a
    training loss sees them: pixels the labels leave at ``ignore_index``
    are not learnt from, so they count in the coverage, not in the IoU.

    Scores (``scores()``, all in %):

    - ``mIoU``: mmseg's IoU (``IoUMetric``'s areas, GT ``ignore_index``
      excluded, NaN classes skipped in the mean) over the labelled pixels;
    - ``coverage``: labelled pixels / pixels with a GT label;
    - ``over_activation.<class>``: per foreground class, the share of the
      pixels labelled as the class that lie outside its GT objects,
      ``FP_c / (TP_c + FP_c)`` over the labelled pixels (classes never
      labelled are left out), and ``over_activation``, its mean.

    A score without any pixel to compute it on is NaN.

    Args:
        num_classes (int): Label values 0 .. ``num_classes - 1`` (bg = 0).
        ignore_index (int): Unlabelled value, in both maps. Defaults to
            255.
    """

    def __init__(self, num_classes: int, ignore_index: int = 255) -> None:
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.areas = [torch.zeros(num_classes, dtype=torch.float64)
                      for _ in range(4)]  # intersect, union, pred, label
        self.valid = 0
        self.labelled = 0

    def add(self, pred: Tensor, gt: Tensor) -> None:
        """Add one image's labels ``pred`` against ``gt``, both (H, W)."""
        if pred.shape != gt.shape:
            raise ValueError(f'LabelQuality: labels {tuple(pred.shape)} and '
                             f'ground truth {tuple(gt.shape)} differ in size')
        gt = gt.to(pred)
        valid = gt != self.ignore_index
        labelled = valid & (pred != self.ignore_index)
        self.valid += int(valid.sum())
        self.labelled += int(labelled.sum())
        areas = IoUMetric.intersect_and_union(pred[labelled], gt[labelled],
                                              self.num_classes,
                                              self.ignore_index)
        for total, area in zip(self.areas, areas):
            total += area.double()

    def scores(self, class_names: Sequence[str]) -> Dict[str, float]:
        """``mIoU``, ``coverage``, ``over_activation`` and
        ``over_activation.<class>`` (%), rounded to 2 decimals."""
        intersect, union, pred, _ = (a.numpy() for a in self.areas)
        with np.errstate(divide='ignore', invalid='ignore'):
            iou = intersect / union
            over = (pred - intersect) / pred
        scores = dict(
            mIoU=_percent(_nanmean(iou)),
            coverage=_percent(self.labelled / max(self.valid, 1)))
        per_class = {
            f'over_activation.{name}': _percent(value)
            for name, value in zip(class_names[1:], over[1:])
            if not np.isnan(value)
        }
        if per_class:
            scores['over_activation'] = _percent(_nanmean(over[1:]))
        scores.update(per_class)
        return scores


def _percent(value: float) -> float:
    return round(float(value) * 100, 2)


def _nanmean(values: np.ndarray) -> float:
    """Mean over the non-NaN values (NaN when there is none)."""
    values = values[~np.isnan(values)]
    return float(values.mean()) if len(values) else float('nan')
