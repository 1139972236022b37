# Copyright (c) OpenMMLab. All rights reserved.
"""The DuPL/ToCo ViT backbone expressed through mmpretrain's ViT."""
from typing import Dict, Sequence, Tuple

import torch
from mmpretrain.models.backbones import VisionTransformer
from mmpretrain.models.utils import resize_pos_embed
from mmseg.registry import MODELS
from torch import Tensor

from .pretrained_vit_loader import load_pretrained_vit


@MODELS.register_module()
class DuPLVisionTransformer(VisionTransformer):
    """mmpretrain's ViT with the details of the DuPL reference (algorithm.md
    §2.2).

    What differs from ``mmpretrain.VisionTransformer`` defaults, and why:

    - ``patch_cfg=dict(padding=0)``: the reference's 16x16 stride-16 patch
      conv floors non-multiples of 16; mmcv's ``PatchEmbed`` would pad them.
    - ``img_size=224``: the position table stays 14x14 and is resized to the
      token grid on every forward (bicubic, ``align_corners=False``), exactly
      as the reference does. A 448 ``img_size`` would resize it once at load
      time and then again for the 0.5/1.5 CAM scales, changing numerics.
    - ``freeze_pos_embed=True``: ``pos_embed.requires_grad=False`` in the
      reference for the whole of training.
    - ``out_indices=(9, 11)`` with ``final_norm=True``: mmpretrain applies the
      final LayerNorm only after the last block, so block 9 (``aux_layer=-3``)
      comes out raw and block 11 normed, as in the reference.
    - LayerNorm ``eps=1e-6`` and exact GELU are mmpretrain's defaults already.

    The resized table of the last token grid is cached while the frozen
    table is unchanged (same storage and version): the multi-scale CAM
    passes repeat three grid sizes on every iteration.

    Outputs ``(F_aux, F)``: two ``(B, C, H // 16, W // 16)`` feature maps.

    Args:
        freeze_pos_embed (bool): Keep the position embedding frozen.
            Defaults to True.
        **kwargs: Passed to ``mmpretrain.VisionTransformer``.
    """

    def __init__(self,
                 arch: str = 'deit-base',
                 img_size: int = 224,
                 patch_size: int = 16,
                 out_indices: Sequence[int] = (9, 11),
                 out_type: str = 'featmap',
                 final_norm: bool = True,
                 patch_cfg: dict = dict(padding=0),
                 freeze_pos_embed: bool = True,
                 **kwargs) -> None:
        # mmpretrain assigns into out_indices, so it must be a list.
        super().__init__(
            arch=arch,
            img_size=img_size,
            patch_size=patch_size,
            out_indices=list(out_indices),
            out_type=out_type,
            final_norm=final_norm,
            patch_cfg=dict(patch_cfg),
            **kwargs)
        self.freeze_pos_embed = freeze_pos_embed
        if freeze_pos_embed:
            self.pos_embed.requires_grad = False
        # grid -> ((storage, version, dtype, device), resized table)
        self._pos_cache: Dict[tuple, tuple] = {}

    def init_weights(self) -> None:
        """Initialise, then re-apply the frozen position embedding flag.

        An ``init_cfg=dict(type='Pretrained', checkpoint=..., prefix=...)``
        accepts mmpretrain-format files and the reference's timm-format
        DeiT/ViT files alike (see :func:`load_pretrained_vit`, which logs
        the format and ``N/M tensors loaded``). Missing or mismatched
        tensors raise, naming them, unless ``init_cfg.allow_partial=True``.
        """
        pretrained = self.init_cfg
        if isinstance(pretrained, dict) and pretrained.get(
                'type') == 'Pretrained':
            # mmengine's PretrainedInit knows one format only: initialise
            # randomly without it, then load the file ourselves.
            self.init_cfg = None
            try:
                super().init_weights()
            finally:
                self.init_cfg = pretrained
            load_pretrained_vit(
                self,
                pretrained['checkpoint'],
                prefix=pretrained.get('prefix') or '',
                map_location=pretrained.get('map_location', 'cpu'),
                allow_partial=bool(pretrained.get('allow_partial', False)))
        else:
            super().init_weights()
        if self.freeze_pos_embed:
            self.pos_embed.requires_grad = False

    def resized_pos_embed(self, grid: Tuple[int, int]) -> Tensor:
        """The position table resized to ``grid`` (bicubic, as
        mmpretrain's ``resize_pos_embed``), cached per grid while
        ``pos_embed`` is frozen and unchanged.

        Args:
            grid (tuple[int, int]): Token grid (h, w).

        Returns:
            Tensor: Shape (1, num_extra_tokens + h * w, C).
        """
        table, grid = self.pos_embed, tuple(grid)
        trained = table.requires_grad and torch.is_grad_enabled()
        if trained or grid == tuple(self.patch_resolution):
            return self._resize_pos_embed(grid)
        key = (table.data_ptr(), table._version, table.dtype, table.device)
        entry = self._pos_cache.get(grid)
        if entry is None or entry[0] != key:
            # A normal (not inference) tensor, usable by later training
            # forwards even when first made inside a CAM pass.
            with torch.inference_mode(False), torch.no_grad():
                entry = (key, self._resize_pos_embed(grid))
            self._pos_cache[grid] = entry
        return entry[1]

    def _resize_pos_embed(self, grid: Tuple[int, int]) -> Tensor:
        return resize_pos_embed(
            self.pos_embed,
            self.patch_resolution,
            grid,
            mode=self.interpolate_mode,
            num_extra_tokens=self.num_extra_tokens)

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """mmpretrain's ``VisionTransformer.forward`` with the cached
        position table (``resized_pos_embed``).

        Args:
            x (Tensor): Images, shape (B, 3, H, W).

        Returns:
            tuple[Tensor]: One map per ``out_indices`` entry.
        """
        batch = x.shape[0]
        x, grid = self.patch_embed(x)
        if self.cls_token is not None:
            x = torch.cat((self.cls_token.expand(batch, -1, -1), x), dim=1)
        x = self.drop_after_pos(x + self.resized_pos_embed(grid))
        x = self.pre_norm(x)
        outs = []
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i == len(self.layers) - 1 and self.final_norm:
                x = self.ln1(x)
            if i in self.out_indices:
                outs.append(self._format_output(x, grid))
        return tuple(outs)
