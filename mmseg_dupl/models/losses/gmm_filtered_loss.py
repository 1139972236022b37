# Copyright (c) OpenMMLab. All rights reserved.
"""DuPL's GMM noise filter (algorithm.md §8) as a wrapper of any per-pixel
loss."""
from typing import Optional

import torch.nn as nn
from mmseg.registry import MODELS
from mmseg.utils import ConfigType
from torch import Tensor

from ..noise_filter import (GMMNoiseFit, filter_noisy_labels,
                            self_loss_noise_fits)


@MODELS.register_module()
class GMMFilteredLoss(nn.Module):
    """Ignore the pixels a two-component GMM flags as noisy, then apply a
    wrapped per-pixel loss.

    For a decode head trained on noisy labels (e.g. exported pseudo labels)
    use it as ``loss_decode``::

        loss_decode=dict(
            type='GMMFilteredLoss',
            loss_cfg=dict(type='CrossEntropyLoss', loss_weight=1.0))

    and switch it on from an iteration with ``GMMNoiseFilterHook`` (see
    ``configs/examples/segformer_mit-b0_gmm-filtered-ce_toy.py``)::

        custom_hooks = [dict(type='GMMNoiseFilterHook', start_iter=8000,
                             target='decode_head.loss_decode')]

    ``enabled`` is the switch; it is True at construction (a loss used on
    its own filters), and the hook sets it from ``runner.iter`` before
    every iteration, so a resumed run is exact. While enabled, every call:

    .. code:: text

        noisy = self_loss_noise_fits([cls_score], [label]).noisy
              # CE(cls_score, label) unreduced, no grad; a GMM per image,
              # fitted on fg pixels with ce > min_loss (algorithm.md §8)
        label = label with noisy pixels set to ignore_index
        return wrapped_loss(cls_score, label, weight, ignore_index, ...)

    mmseg's ``BaseDecodeHead.loss_by_feat`` resizes the logits to the label
    size before calling the loss, so ``cls_score`` and ``label`` share
    (H, W). The noise criterion is always the softmax CE (DuPL's), whatever
    the wrapped loss is. Background (label 0) is never filtered.

    The last call's fit (mask, fitted and accepted rows, mean gaps) is
    kept in ``last_fit``; ``GMMNoiseFilterHook`` logs its statistics.

    Args:
        loss_cfg (dict): Config of the wrapped mmseg loss, called as
            ``loss(cls_score, label, weight=..., ignore_index=..., **kw)``.
            Defaults to ``dict(type='CrossEntropyLoss',
            avg_non_ignore=True)``: the mean over the pixels still
            labelled. With mmseg's ``avg_non_ignore=False`` the filtered
            pixels would still count in the denominator.
        min_loss (float): Fit only on losses above this. Defaults to 0.1.
        min_pixels (int): Fit an image only with more fit pixels than
            this. Defaults to 1000.
        min_mean_gap (float): Accept a fit only when the two means differ
            by more than this. Defaults to 1.0.
        gamma (float): Posterior of the high-loss component above which a
            pixel is noisy. Defaults to 0.95.
        enabled (bool): Whether the filter runs; ``GMMNoiseFilterHook``
            drives it by iteration. Defaults to True.
        loss_name (str, optional): Name of the loss item; defaults to the
            wrapped loss's. It must start with ``loss_``.
    """

    def __init__(self,
                 loss_cfg: ConfigType = dict(
                     type='CrossEntropyLoss', avg_non_ignore=True),
                 min_loss: float = 0.1,
                 min_pixels: int = 1000,
                 min_mean_gap: float = 1.0,
                 gamma: float = 0.95,
                 enabled: bool = True,
                 loss_name: Optional[str] = None) -> None:
        super().__init__()
        if not 0. < gamma < 1.:
            raise ValueError('GMMFilteredLoss: gamma must be in (0, 1), got '
                             f'{gamma}')
        self.loss = MODELS.build(loss_cfg)
        name = loss_name or getattr(self.loss, 'loss_name', None)
        if not isinstance(name, str) or not name.startswith('loss_'):
            raise ValueError(
                "GMMFilteredLoss: loss_name must start with 'loss_' to be "
                f'back-propagated, got {name!r} (loss_cfg={loss_cfg})')
        self._loss_name = name
        self.gmm_cfg = dict(
            min_loss=min_loss,
            min_pixels=min_pixels,
            min_mean_gap=min_mean_gap,
            gamma=gamma)
        self.enabled = bool(enabled)
        self.last_fit: Optional[GMMNoiseFit] = None

    def noise_mask(self, cls_score: Tensor, label: Tensor,
                   ignore_index: int = 255) -> Tensor:
        """Noisy pixels of every image of the batch.

        Args:
            cls_score (Tensor): Logits, (B, K, H, W).
            label (Tensor): Labels at the logits' size, (B, H, W).
            ignore_index (int): Ignored label. Defaults to 255.

        Returns:
            Tensor: Bool (B, H, W), True = noisy (always a foreground
            label).
        """
        if cls_score.dim() != 4 or label.shape != (
                cls_score.shape[0], *cls_score.shape[2:]):
            raise ValueError(
                'GMMFilteredLoss: expected cls_score (B, K, H, W) and label '
                f'(B, H, W) of the same size, got {tuple(cls_score.shape)} '
                f'and {tuple(label.shape)}')
        fit = self_loss_noise_fits([cls_score], [label], ignore_index,
                                   self.gmm_cfg)[0]
        self.last_fit = fit
        return fit.noisy

    def forward(self,
                cls_score: Tensor,
                label: Tensor,
                weight: Optional[Tensor] = None,
                ignore_index: int = 255,
                **kwargs) -> Tensor:
        """Filter the labels, then call the wrapped loss.

        Args:
            cls_score (Tensor): Logits, (B, K, H, W).
            label (Tensor): Labels, (B, H, W).
            weight (Tensor, optional): Per-pixel weight, passed on.
            ignore_index (int): Ignored label. Defaults to 255.
            **kwargs: Passed on to the wrapped loss.

        Returns:
            Tensor: The wrapped loss on the filtered labels.
        """
        if self.enabled:
            noisy = self.noise_mask(cls_score, label, ignore_index)
            label = filter_noisy_labels(label, noisy, ignore_index)
        return self.loss(
            cls_score,
            label,
            weight=weight,
            ignore_index=ignore_index,
            **kwargs)

    @property
    def loss_name(self) -> str:
        """str: Name of the loss item (the wrapped loss's by default)."""
        return self._loss_name

    def extra_repr(self) -> str:
        cfg = ', '.join(f'{k}={v}' for k, v in self.gmm_cfg.items())
        return (f'{cfg}, enabled={self.enabled}, '
                f'loss_name={self._loss_name!r}')
