# Copyright (c) OpenMMLab. All rights reserved.
from .crf_iou_metric import DEFAULT_CRF_CFG, CRFIoUMetric
from .dual_student_metric import DualStudentMetric, multilabel_f1

__all__ = [
    'CRFIoUMetric', 'DEFAULT_CRF_CFG', 'DualStudentMetric', 'multilabel_f1'
]
