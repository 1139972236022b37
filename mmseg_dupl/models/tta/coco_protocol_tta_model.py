# Copyright (c) OpenMMLab. All rights reserved.
"""The official DuPL COCO evaluation protocol as an mmseg TTA model."""
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import Tensor

from .voc_protocol_tta_model import VOCProtocolTTAModel, flip_sum

COCO_SCALES = (1.0, 1.25, 1.5)


@MODELS.register_module()
class COCOProtocolTTAModel(VOCProtocolTTAModel):
    """DuPL's official COCO evaluation (algorithm.md §12,
    ``eval_seg_coco_ddp.py``).

    For each (native-resolution) image::

        x   = bilinear(x, 448x448)                   # aspect not kept
        for s in scales:                             # (1.0, 1.25, 1.5)
            x_s = bilinear(x, (int(448*s), int(448*s)))
            l   = raw logits of [x_s, flip(x_s)]
            m_s = g(l[0]) + flip(g(l[1]))   # g: resize to the 1.0 grid
        logits = up(sum over s of m_s)      # up: to label size
        pred   = argmax(logits)

    The scale-1.0 grid is the decoder resolution at 448 (28 x 28 for a
    stride-16 ViT). It differs from :class:`VOCProtocolTTAModel` in the
    448 resize, in summing (not max) over scales and in merging on the
    decoder grid (not at label size). The same choice of running the
    scales inside the model holds (see there), as do the student choice
    (``model.test_cfg.student``) and the outputs (``seg_logits`` and
    ``pred_sem_seg`` at ``ori_shape``).

    Usage::

        tta_model = dict(type='COCOProtocolTTAModel')
        tta_pipeline = [dict(type='LoadCheckedImageFromFile'),
                        dict(type='LoadCheckedAnnotations'),
                        dict(type='PackWSSSInputs')]

    Args:
        module (dict | nn.Module): The segmentor.
        scales (Sequence[float]): Scales relative to ``resize_to``; must
            contain 1.0 (its grid is where scales are summed). Defaults to
            ``(1.0, 1.25, 1.5)``.
        flip (bool): Add the flip logits within each scale. Defaults to
            True.
        resize_to (tuple[int, int], optional): ``(H, W)`` the image is
            resized to first; None keeps the native size. Defaults to
            ``(448, 448)``.
        data_preprocessor (dict, optional): Overrides the segmentor's.
    """

    def __init__(self,
                 module: Union[dict, torch.nn.Module],
                 scales: Sequence[float] = COCO_SCALES,
                 flip: bool = True,
                 resize_to: Optional[Tuple[int, int]] = (448, 448),
                 data_preprocessor: Union[dict, None] = None) -> None:
        super().__init__(
            module=module,
            scales=scales,
            flip=flip,
            data_preprocessor=data_preprocessor)
        if 1.0 not in self.scales:
            raise ValueError('tta_model.scales must contain 1.0 (the grid '
                             f'the scales are summed on), got {scales}')
        self.resize_to = tuple(resize_to) if resize_to else None

    def protocol_logits(self, image: Tensor,
                        out_size: Tuple[int, int]) -> Tensor:
        """algorithm.md §12 on one preprocessed image.

        Args:
            image (Tensor): ``(1, 3, H, W)`` normalised image.
            out_size (tuple[int, int]): Label size ``(H_l, W_l)``.

        Returns:
            Tensor: ``(1, K, H_l, W_l)`` upsampled sum over scales of the
            flip-summed logits on the scale-1.0 grid.
        """
        if self.resize_to is not None:
            image = F.interpolate(
                image,
                size=self.resize_to,
                mode='bilinear',
                align_corners=False)
        per_scale = {s: self.scale_logits(image, s) for s in self.scales}
        grid = per_scale[1.0].shape[2:]
        total = 0
        for logits in per_scale.values():
            total = total + (
                flip_sum(logits, grid) if self.flip else F.interpolate(
                    logits, size=grid, mode='bilinear', align_corners=False))
        return F.interpolate(
            total, size=tuple(out_size), mode='bilinear', align_corners=False)
