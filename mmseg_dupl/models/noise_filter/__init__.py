# Copyright (c) OpenMMLab. All rights reserved.
"""DuPL's GMM noise filter (algorithm.md §8): a batched two-component GMM
per image over per-pixel losses, and the rule that turns it into a mask."""
from .gmm import filter_noisy_labels, gmm_noise_fit, gmm_noise_mask
from .gmm_noise_fit import GMMNoiseFit, empty_noise_fit
from .self_loss_noise import DEFAULT_GMM_CFG, self_loss_noise_fits

__all__ = [
    'gmm_noise_mask', 'gmm_noise_fit', 'filter_noisy_labels', 'GMMNoiseFit',
    'empty_noise_fit', 'self_loss_noise_fits', 'DEFAULT_GMM_CFG'
]
