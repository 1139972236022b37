# Copyright (c) OpenMMLab. All rights reserved.
"""A multi-label head that classifies each tile of a mosaic on its own."""
from typing import Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmpretrain.models.heads import MultiLabelLinearClsHead
from mmpretrain.registry import MODELS


@MODELS.register_module()
class TiledMultiLabelClsHead(MultiLabelLinearClsHead):
    """mmpretrain's multi-label linear head, applied per tile of a
    ``grid x grid`` mosaic (tools/pretrain_toy_backbone.py).

    The feature map is average-pooled over each tile's tokens and one shared
    linear layer scores the ``num_classes`` classes of that tile, so the
    tokens of a tile must carry what is in that tile and not its
    neighbours': a classification task that keeps the patch tokens local,
    which DuPL's CAMs (a 1x1 classifier on the tokens) need. Scores are
    ordered tile by tile, row-major: ``(row * grid + col) * num_classes +
    class``.

    Args:
        num_classes (int): Classes of one tile.
        in_channels (int): Channels of the feature map.
        grid (int): Tiles per side. Defaults to 2.
        **kwargs: Passed to ``MultiLabelLinearClsHead``.
    """

    def __init__(self, num_classes: int, in_channels: int, grid: int = 2,
                 **kwargs) -> None:
        super().__init__(num_classes=num_classes * grid * grid,
                         in_channels=in_channels, **kwargs)
        self.grid = grid
        self.fc = nn.Linear(in_channels, num_classes)

    def pre_logits(self, feats: Tuple[torch.Tensor]) -> torch.Tensor:
        """``(B, C, H, W)`` -> per-tile mean features ``(B, g, g, C)``."""
        return F.adaptive_avg_pool2d(feats[-1], self.grid).permute(
            0, 2, 3, 1)

    def forward(self, feats: Tuple[torch.Tensor]) -> torch.Tensor:
        """Scores ``(B, grid * grid * num_classes)``."""
        tiles = self.pre_logits(feats)
        return self.fc(tiles).flatten(1)
