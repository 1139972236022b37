# Copyright (c) OpenMMLab. All rights reserved.
from .crf_iou_metric import DEFAULT_CRF_CFG, CRFIoUMetric

__all__ = ['CRFIoUMetric', 'DEFAULT_CRF_CFG']
