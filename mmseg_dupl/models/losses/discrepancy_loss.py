# Copyright (c) OpenMMLab. All rights reserved.
"""Registered wrapper of the DuPL discrepancy loss."""
import torch.nn as nn
from mmseg.registry import MODELS
from torch import Tensor

from .functional import discrepancy_loss


@MODELS.register_module()
class DiscrepancyLoss(nn.Module):
    """Stop-gradient cosine discrepancy between two feature maps (algorithm.md
    §5).

    ``loss_weight * ([1 + mean cos(SG(a), b)] + [1 + mean cos(SG(b), a)])``,
    the cosine taken per channel over the flattened spatial axis. Each
    input only receives gradient through the term in which the other one
    is detached, so with two students each is pushed away from the other
    and neither is pulled. Works on any two same-shaped feature maps.

    Args:
        loss_weight (float): Weight of the loss. Defaults to 1.0.
        eps (float): Cosine eps. Defaults to 1e-6.
        loss_name (str): Name of the loss item; it must start with
            ``loss_`` to be back-propagated. Defaults to 'loss_disc'.
    """

    def __init__(self,
                 loss_weight: float = 1.0,
                 eps: float = 1e-6,
                 loss_name: str = 'loss_disc') -> None:
        super().__init__()
        if not loss_name.startswith('loss_'):
            raise ValueError('DiscrepancyLoss: loss_name must start with '
                             f"'loss_' to be back-propagated, got "
                             f'{loss_name!r}')
        self.loss_weight = loss_weight
        self.eps = eps
        self._loss_name = loss_name

    def forward(self, feat_a: Tensor, feat_b: Tensor) -> Tensor:
        """Compute the weighted loss.

        Args:
            feat_a (Tensor): Features of student 1, (B, D, h, w) or
                (B, D, N).
            feat_b (Tensor): Features of student 2, same shape.

        Returns:
            Tensor: Scalar loss.
        """
        return self.loss_weight * discrepancy_loss(feat_a, feat_b, self.eps)

    @property
    def loss_name(self) -> str:
        """str: Name of the loss item."""
        return self._loss_name

    def extra_repr(self) -> str:
        return (f'loss_weight={self.loss_weight}, eps={self.eps}, '
                f'loss_name={self._loss_name!r}')
