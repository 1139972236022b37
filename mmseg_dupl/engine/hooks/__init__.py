# Copyright (c) OpenMMLab. All rights reserved.
from .cosine_threshold_hook import CosineThresholdHook
from .gmm_noise_filter_hook import GMMNoiseFilterHook

__all__ = ['CosineThresholdHook', 'GMMNoiseFilterHook']
