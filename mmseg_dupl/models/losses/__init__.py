# Copyright (c) OpenMMLab. All rights reserved.
from .balanced_seg_loss import BalancedSegLoss
from .discrepancy_loss import DiscrepancyLoss

__all__ = ['BalancedSegLoss', 'DiscrepancyLoss']
