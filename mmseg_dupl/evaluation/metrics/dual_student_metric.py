# Copyright (c) OpenMMLab. All rights reserved.
"""The reference's in-training validation scores, per student
(``validate_siamase``, algorithm.md §10.1)."""
import re
from collections import OrderedDict
from typing import Dict, List, Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log
from mmseg.evaluation.metrics import IoUMetric
from mmseg.registry import METRICS
from prettytable import PrettyTable

from mmseg_dupl.models.segmentors.student_outputs import (STUDENT_MAPS,
                                                          student_field)


def multilabel_f1(logits: torch.Tensor, cls_labels: torch.Tensor) -> float:
    """F1 of one image's multi-label prediction ``logits > 0`` against its
    multi-hot labels: ``2 TP / (2 TP + FP + FN)``, 0 when the image has
    no positive in either (sklearn's ``f1_score`` default, which the
    reference averages over images).

    Args:
        logits (Tensor): Class logits, (C,).
        cls_labels (Tensor): Multi-hot labels, (C,).

    Returns:
        float: F1 in [0, 1].
    """
    pred = logits.flatten() > 0
    true = cls_labels.flatten().to(pred.device) > 0
    if pred.shape != true.shape:
        raise ValueError(f'DualStudentMetric: {pred.numel()} class logits '
                         f'for {true.numel()} image labels')
    tp = int((pred & true).sum())
    errors = int((pred ^ true).sum())
    return 2 * tp / (2 * tp + errors) if tp + errors else 0.


@METRICS.register_module()
class DualStudentMetric(BaseMetric):
    """Per student: seg mIoU, CAM-label mIoU, aux-CAM-label mIoU and the
    multi-label classification F1, what the reference's validation logs
    (algorithm.md §10.1).

    It reads the per-student fields that ``DualStudentSegmentor`` writes
    with ``model.test_cfg.per_student_outputs`` (``'val'`` in the DuPL
    configs: the runner's validation loop only), so one val loop gives
    every score; it composes with mmseg's ``IoUMetric`` (the main
    prediction) in a list ``val_evaluator``. The IoUs are mmseg's
    (``IoUMetric.intersect_and_union`` / ``total_area_to_metrics``, GT 255
    excluded, classes absent from both GT and prediction skipped in the
    mean), the F1 is :func:`multilabel_f1` averaged over images, all in %.

    Metric names (one set per student found in the samples; 8 for DuPL,
    4 for the single-student baseline): ``s{k}.seg_mIoU``,
    ``s{k}.cam_mIoU``, ``s{k}.cam_aux_mIoU``, ``s{k}.cls_F1``. Per-class
    IoUs are printed as a table.

    Args:
        ignore_index (int): GT value excluded. Defaults to 255.
        collect_device (str): See ``BaseMetric``. Defaults to 'cpu'.
        prefix (str, optional): See ``BaseMetric``. Defaults to None.
    """

    def __init__(self,
                 ignore_index: int = 255,
                 collect_device: str = 'cpu',
                 prefix=None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.ignore_index = ignore_index

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Reduce each sample to its per-student areas and F1.

        Args:
            data_batch (dict): The dataloader's batch (unused).
            data_samples (Sequence[dict]): Model outputs with ``gt_sem_seg``,
                ``cls_labels`` and the per-student fields.
        """
        num_classes = len(self.dataset_meta['classes'])
        for sample in data_samples:
            students = self._students(sample)
            gt = sample['gt_sem_seg']['data'].squeeze()
            cls_labels = torch.as_tensor(np.asarray(sample['cls_labels']))
            result = {}
            for k in students:
                for kind in STUDENT_MAPS:
                    pred = sample[student_field(kind, k)]['data'].squeeze()
                    result[(k, kind)] = IoUMetric.intersect_and_union(
                        pred, gt.to(pred), num_classes, self.ignore_index)
                result[(k, 'cls_F1')] = multilabel_f1(
                    sample[student_field('cls_logits', k)], cls_labels)
            self.results.append(result)

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """``s{k}.{seg,cam,cam_aux}_mIoU`` and ``s{k}.cls_F1`` (%)."""
        students = sorted({k for r in results for k, _ in r})
        metrics, per_class = OrderedDict(), OrderedDict()
        for k in students:
            for kind in STUDENT_MAPS:
                areas = [sum(r[(k, kind)][i] for r in results)
                         for i in range(4)]
                iou = IoUMetric.total_area_to_metrics(*areas, ['mIoU'])['IoU']
                metrics[f's{k}.{kind}_mIoU'] = round(
                    float(np.nanmean(iou)) * 100, 2)
                per_class[f's{k} {kind}'] = np.round(iou * 100, 2)
            metrics[f's{k}.cls_F1'] = round(
                float(np.mean([r[(k, 'cls_F1')] for r in results])) * 100, 2)
        self._print_table(per_class)
        return dict(metrics)

    def _students(self, sample: dict) -> List[int]:
        """The student numbers whose fields the sample carries."""
        found = sorted(
            int(m.group(1)) for key in sample
            for m in [re.fullmatch(r'pred_seg_s(\d+)', key)] if m)
        if not found:
            raise KeyError(
                'DualStudentMetric: no per-student predictions (pred_seg_s1, '
                '...) in the data sample of '
                f"{sample.get('img_path', '<unknown>')}. Set "
                "model.test_cfg.per_student_outputs='val' (validation) or "
                'True (tools/test.py).')
        return found

    def _print_table(self, per_class: Dict[str, np.ndarray]) -> None:
        """Per-class IoU of every student's seg / CAM / aux-CAM labels."""
        table = PrettyTable()
        table.add_column('Class', list(self.dataset_meta['classes']))
        for name, values in per_class.items():
            table.add_column(name, list(values))
        print_log('per student, per class IoU:\n' + table.get_string(),
                  logger='current')
