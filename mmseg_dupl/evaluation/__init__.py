# Copyright (c) OpenMMLab. All rights reserved.
from .dense_crf import dense_crf
from .metrics import (DEFAULT_CRF_CFG, CRFIoUMetric, DualStudentMetric,
                      multilabel_f1)

__all__ = [
    'dense_crf', 'CRFIoUMetric', 'DEFAULT_CRF_CFG', 'DualStudentMetric',
    'multilabel_f1'
]
