# Copyright (c) OpenMMLab. All rights reserved.
from .balanced_seg_loss import BalancedSegLoss
from .discrepancy_loss import DiscrepancyLoss
from .gmm_filtered_loss import GMMFilteredLoss

__all__ = ['BalancedSegLoss', 'DiscrepancyLoss', 'GMMFilteredLoss']
