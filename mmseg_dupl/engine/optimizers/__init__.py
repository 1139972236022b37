# Copyright (c) OpenMMLab. All rights reserved.
from .autocast_optim_wrapper import AutocastOptimWrapper
from .learning_rate_check import check_learning_rates

__all__ = ['AutocastOptimWrapper', 'check_learning_rates']
