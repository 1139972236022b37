# Copyright (c) OpenMMLab. All rights reserved.
"""Registered bg/fg-balanced cross-entropy, usable as a ``loss_decode``."""
from typing import Optional

import torch.nn as nn
from mmseg.registry import MODELS
from torch import Tensor

from .functional import balanced_seg_loss


@MODELS.register_module()
class BalancedSegLoss(nn.Module):
    """Background/foreground-balanced CE (algorithm.md §5, ToCo's
    ``get_seg_loss``).

    ``loss_weight * 0.5 * (sum CE[bg] / (#bg + 1e-6) + sum CE[fg] /
    (#fg + 1e-6))`` with bg = label 0 and fg = every other non-ignored
    label, pooled over the batch. Follows mmseg's loss interface, so it can
    be a decode head's ``loss_decode``.

    Args:
        loss_weight (float): Weight of the loss. Defaults to 1.0.
        loss_name (str): Name of the loss item; it must start with
            ``loss_`` to be back-propagated.
            Defaults to 'loss_seg_balanced'.
    """

    def __init__(self,
                 loss_weight: float = 1.0,
                 loss_name: str = 'loss_seg_balanced') -> None:
        super().__init__()
        if not loss_name.startswith('loss_'):
            raise ValueError('BalancedSegLoss: loss_name must start with '
                             f"'loss_' to be back-propagated, got "
                             f'{loss_name!r}')
        self.loss_weight = loss_weight
        self._loss_name = loss_name

    def forward(self,
                seg_logits: Tensor,
                seg_label: Tensor,
                weight: Optional[Tensor] = None,
                ignore_index: int = 255,
                **kwargs) -> Tensor:
        """Compute the weighted loss.

        Args:
            seg_logits (Tensor): Scores at label size, (B, K, H, W).
            seg_label (Tensor): Labels, (B, H, W).
            weight (Tensor, optional): Per-pixel weights from a pixel
                sampler; not supported (the balance is by pixel counts).
                Defaults to None.
            ignore_index (int): Ignored label. Defaults to 255.

        Returns:
            Tensor: Scalar loss.
        """
        if weight is not None:
            raise ValueError('BalancedSegLoss does not support per-pixel '
                             'weights: remove the decode head sampler')
        return self.loss_weight * balanced_seg_loss(seg_logits, seg_label,
                                                    ignore_index)

    @property
    def loss_name(self) -> str:
        """str: Name of the loss item."""
        return self._loss_name

    def extra_repr(self) -> str:
        return (f'loss_weight={self.loss_weight}, '
                f'loss_name={self._loss_name!r}')
