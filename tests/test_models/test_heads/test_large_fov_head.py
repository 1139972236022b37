# Copyright (c) OpenMMLab. All rights reserved.
import torch
import torch.nn.functional as F
from mmseg.registry import MODELS

import mmseg_dupl  # noqa: F401


def test_large_fov_matches_the_reference_layers():
    head = MODELS.build(dict(type='LargeFOVHead', in_channels=8, channels=6,
                             dilation=5, num_classes=4))
    convs = [head.convs[0], head.convs[2], head.conv_seg]
    assert [c.bias for c in convs] == [None] * 3
    assert [c.dilation for c in convs] == [(5, 5), (5, 5), (1, 1)]
    assert head.dropout is None
    x = torch.randn(2, 8, 7, 9)
    ref = F.conv2d(x, convs[0].weight, padding=5, dilation=5).relu()
    ref = F.conv2d(ref, convs[1].weight, padding=5, dilation=5).relu()
    ref = F.conv2d(ref, convs[2].weight)
    out = head(x)
    assert out.shape == (2, 4, 7, 9)
    assert torch.allclose(out, ref, atol=1e-6)
    assert torch.allclose(head([x.clone()]), out)


def test_large_fov_trains_in_a_stock_encoder_decoder():
    model = MODELS.build(dict(
        type='EncoderDecoder',
        backbone=dict(type='DuPLVisionTransformer',
                      arch=dict(embed_dims=16, num_layers=2, num_heads=2,
                                feedforward_channels=16),
                      patch_size=8, out_indices=(0, 1), init_cfg=None),
        decode_head=dict(type='LargeFOVHead', in_channels=16, channels=8,
                         num_classes=3)))
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    samples = [SegDataSample(
        gt_sem_seg=PixelData(data=torch.randint(0, 3, (1, 32, 32))),
        metainfo=dict(img_shape=(32, 32), pad_shape=(32, 32)))]
    losses = model.loss(torch.randn(1, 3, 32, 32), samples)
    assert torch.isfinite(losses['decode.loss_seg_balanced'])
