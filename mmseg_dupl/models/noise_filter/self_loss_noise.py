# Copyright (c) OpenMMLab. All rights reserved.
"""The GMM noise filter applied to segmentation labels: each producer's
labels are judged by its own per-pixel CE (algorithm.md §8)."""
from typing import List, Optional, Sequence

import torch
from torch import Tensor

from ..losses.functional import per_pixel_ce
from .gmm import gmm_noise_fit
from .gmm_noise_fit import GMMNoiseFit

#: The official rule's numbers (algorithm.md §8) and sklearn's start
#: (``init='two_means'`` is faster, not the reference's masks).
DEFAULT_GMM_CFG = dict(
    min_loss=0.1, min_pixels=1000, min_mean_gap=1.0, gamma=0.95,
    init='kmeans')


def self_loss_noise_fits(seg_logits: Sequence[Tensor],
                         labels: Sequence[Tensor],
                         ignore_index: int = 255,
                         gmm_cfg: Optional[dict] = None) -> List[GMMNoiseFit]:
    """GMM noise fits of each producer's labels from its own self-loss
    ``CE(S_k, Y_k)``; every image of every producer is fitted in one
    batched call.

    Args:
        seg_logits (Sequence[Tensor]): Per producer, (B, K, H, W) at label
            size (detached here).
        labels (Sequence[Tensor]): Per producer, (B, H, W).
        ignore_index (int): Ignored label. Defaults to 255.
        gmm_cfg (dict, optional): ``gmm_noise_fit`` arguments
            (``min_loss``, ``min_pixels``, ``min_mean_gap``, ``gamma``,
            ``init``, the fit's start); defaults to
            :data:`DEFAULT_GMM_CFG`.

    Returns:
        list[GMMNoiseFit]: One per producer; its ``noisy`` is bool
        (B, H, W), True = noisy.
    """
    if len(seg_logits) != len(labels) or not labels:
        raise ValueError('self_loss_noise_fits: one label map per logits '
                         f'tensor, got {len(seg_logits)} and {len(labels)}')
    cfg = DEFAULT_GMM_CFG if gmm_cfg is None else gmm_cfg
    with torch.no_grad():
        ce = torch.cat([
            per_pixel_ce(s.detach().float(), y, ignore_index)
            for s, y in zip(seg_logits, labels)
        ])
        fit = gmm_noise_fit(
            ce.flatten(1),
            torch.cat(list(labels)).flatten(1),
            ignore_index=ignore_index,
            **cfg)
    fit.noisy = fit.noisy.view(ce.shape)
    return fit.chunk(len(labels))
