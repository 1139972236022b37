# Copyright (c) OpenMMLab. All rights reserved.
"""LargeFOV decode head of the DuPL reference (algorithm.md §2.3)."""
from typing import List, Optional, Union

import torch.nn as nn
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS
from torch import Tensor


@MODELS.register_module()
class LargeFOVHead(BaseDecodeHead):
    """DeepLab-LargeFOV head: two dilated 3x3 convs and a 1x1 classifier.

    .. code:: text

        F (B, in_channels, h, w) -> conv3x3(dil d, no bias) -> ReLU
          -> conv3x3(dil d, no bias) -> ReLU -> conv1x1(no bias) -> (B,K,h,w)

    No BN and no dropout, and PyTorch's default conv initialisation, as the
    reference (its ``_init_weights`` is never called). Usable as the decode
    head of any mmseg segmentor.

    Args:
        in_channels (int): Channels of the input feature map.
        channels (int): Hidden channels. Defaults to 512.
        dilation (int): Dilation (and padding) of the 3x3 convs.
            Defaults to 5.
        loss_decode (dict | list[dict]): Loss when the head is trained by
            mmseg's usual ``loss_by_feat`` (DuPL's segmentor computes its
            own losses). Defaults to the bg/fg balanced CE of DuPL.
        **kwargs: Passed to ``BaseDecodeHead`` (``num_classes`` required).
    """

    def __init__(self,
                 in_channels: int,
                 channels: int = 512,
                 dilation: int = 5,
                 dropout_ratio: float = 0.,
                 loss_decode: Union[dict, List[dict]] = dict(
                     type='BalancedSegLoss'),
                 init_cfg: Optional[Union[dict, List[dict]]] = None,
                 **kwargs) -> None:
        super().__init__(
            in_channels,
            channels,
            dropout_ratio=dropout_ratio,
            loss_decode=loss_decode,
            init_cfg=init_cfg,
            **kwargs)
        self.convs = nn.Sequential(
            nn.Conv2d(
                self.in_channels,
                channels,
                3,
                padding=dilation,
                dilation=dilation,
                bias=False), nn.ReLU(inplace=True),
            nn.Conv2d(
                channels,
                channels,
                3,
                padding=dilation,
                dilation=dilation,
                bias=False), nn.ReLU(inplace=True))
        # The reference's classifier has no bias.
        self.conv_seg = nn.Conv2d(channels, self.out_channels, 1, bias=False)

    def forward(self, inputs: Union[Tensor, List[Tensor]]) -> Tensor:
        """Segmentation logits at the feature stride.

        Args:
            inputs (Tensor | list[Tensor]): A ``(B, C, h, w)`` map or a list
                of maps (``in_index`` picks one).

        Returns:
            Tensor: ``(B, num_classes, h, w)`` logits.
        """
        if isinstance(inputs, Tensor):
            inputs = [inputs]
        x = self._transform_inputs(inputs)
        return self.cls_seg(self.convs(x))
