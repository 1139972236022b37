# Copyright (c) OpenMMLab. All rights reserved.
"""One DuPL student: backbone, CAM classifiers and a segmentation head."""
from typing import Dict, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, OptMultiConfig
from torch import Tensor


@MODELS.register_module()
class DuPLStudent(BaseModule):
    """A student network of DuPL (algorithm.md §2.1-2.3).

    .. code:: text

        x -> backbone -> (F_aux, F)
             F     -> GMP -> classifier (1x1, no bias)     -> cls     (B, C)
             F_aux -> GMP -> aux_classifier (1x1, no bias) -> cls_aux (B, C)
             F     -> decode_head                          -> seg     (B,K,h,w)

    The backbone must return at least two feature maps; ``aux_index`` and
    ``feat_index`` pick the auxiliary (raw block 9 for ViT-B) and the final
    (normed last block) maps. Any mmseg/mmpretrain backbone that does so can
    stand in through the config.

    Args:
        backbone (dict): Backbone config.
        decode_head (dict): Decode head config (``num_classes`` = C + 1).
        num_classes (int): Foreground classes C of the classifiers.
        in_channels (int): Channels of the feature maps. Defaults to 768.
        aux_index (int): Index of ``F_aux`` in the backbone outputs.
            Defaults to 0.
        feat_index (int): Index of ``F`` in the backbone outputs.
            Defaults to -1.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 backbone: ConfigType,
                 decode_head: ConfigType,
                 num_classes: int,
                 in_channels: int = 768,
                 aux_index: int = 0,
                 feat_index: int = -1,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg)
        self.backbone = MODELS.build(backbone)
        self.classifier = nn.Conv2d(in_channels, num_classes, 1, bias=False)
        self.aux_classifier = nn.Conv2d(
            in_channels, num_classes, 1, bias=False)
        self.decode_head = MODELS.build(decode_head)
        self.num_classes = num_classes
        self.aux_index = aux_index
        self.feat_index = feat_index

    def extract_feat(self, inputs: Tensor) -> Tuple[Tensor, Tensor]:
        """Return ``(F_aux, F)``, each ``(B, D, h, w)``."""
        feats = self.backbone(inputs)
        return feats[self.aux_index], feats[self.feat_index]

    def forward(self,
                inputs: Tensor,
                with_seg: bool = True) -> Dict[str, Optional[Tensor]]:
        """Training/inference forward of one student.

        Args:
            inputs (Tensor): ``(B, 3, H, W)`` normalised images.
            with_seg (bool): Run the decode head. Defaults to True.

        Returns:
            dict: ``cls`` and ``cls_aux`` ``(B, C)`` logits, ``seg``
            ``(B, K, h, w)`` logits (None without ``with_seg``), ``feat``
            and ``feat_aux``, the final and auxiliary feature maps
            ``(B, D, h, w)``.
        """
        feat_aux, feat = self.extract_feat(inputs)
        cls = self.classifier(F.adaptive_max_pool2d(feat, 1)).flatten(1)
        cls_aux = self.aux_classifier(F.adaptive_max_pool2d(feat_aux,
                                                            1)).flatten(1)
        seg = self.decode_head(feat) if with_seg else None
        return dict(
            cls=cls, cls_aux=cls_aux, seg=seg, feat=feat, feat_aux=feat_aux)

    def seg_logits(self, inputs: Tensor) -> Tensor:
        """Segmentation logits ``(B, K, h, w)`` at the feature stride."""
        return self.decode_head(self.extract_feat(inputs)[1])

    def cams_from_features(self, feat_aux: Tensor,
                           feat: Tensor) -> Tuple[Tensor, Tensor]:
        """Raw CAMs ``conv(F, W)`` and ``conv(F_aux, W_aux)`` (no ReLU).

        Returns:
            tuple[Tensor, Tensor]: ``(cam, cam_aux)``, each ``(B, C, h, w)``.
        """
        cam = F.conv2d(feat, self.classifier.weight)
        cam_aux = F.conv2d(feat_aux, self.aux_classifier.weight)
        return cam, cam_aux

    @torch.inference_mode()
    def cams(self, inputs: Tensor) -> Tuple[Tensor, Tensor]:
        """Raw, detached CAMs at token resolution (the reference's
        ``cam_only`` mode), under ``torch.inference_mode`` (inference
        tensors: read them, do not modify them in place).

        Args:
            inputs (Tensor): ``(N, 3, H, W)`` normalised images.

        Returns:
            tuple[Tensor, Tensor]: ``(cam, cam_aux)``, each ``(N, C, h, w)``.
        """
        return self.cams_from_features(*self.extract_feat(inputs))
