# Copyright (c) OpenMMLab. All rights reserved.
import pytest
import torch
import torch.nn.functional as F
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from mmseg_dupl.models.losses.balanced_seg_loss import BalancedSegLoss

IGN = 255


def _manual(logits, label):
    ce = F.cross_entropy(logits, label, ignore_index=IGN, reduction='none')
    bg = label == 0
    fg = (label != 0) & (label != IGN)
    return 0.5 * (
        ce[bg].sum() / (bg.sum() + 1e-6) + ce[fg].sum() / (fg.sum() + 1e-6))


def test_build_name_and_repr():
    loss = MODELS.build(dict(type='BalancedSegLoss', loss_weight=0.2))
    assert isinstance(loss, BalancedSegLoss)
    assert loss.loss_name == 'loss_seg_balanced'
    assert 'loss_weight=0.2' in repr(loss)
    with pytest.raises(ValueError, match='loss_'):
        BalancedSegLoss(loss_name='seg')


def test_value_vs_manual():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 4, 5)
    label = torch.randint(0, 3, (2, 4, 5))
    label[1, :2] = IGN
    loss = BalancedSegLoss(loss_weight=0.2)
    torch.testing.assert_close(
        loss(logits, label), 0.2 * _manual(logits, label))
    with pytest.raises(ValueError, match='sampler'):
        loss(logits, label, weight=torch.ones(2, 4, 5))


def test_as_decode_head_loss():
    head = MODELS.build(
        dict(
            type='FCNHead',
            in_channels=4,
            channels=4,
            num_convs=1,
            num_classes=3,
            loss_decode=dict(type='BalancedSegLoss', loss_weight=0.5)))
    torch.manual_seed(0)
    seg_logits = torch.randn(2, 3, 4, 4, requires_grad=True)
    labels = torch.randint(0, 3, (2, 8, 8))
    labels[0, 0] = IGN
    samples = []
    for label in labels:
        sample = SegDataSample()
        sample.gt_sem_seg = PixelData(data=label[None])
        samples.append(sample)
    losses = head.loss_by_feat(seg_logits, samples)
    up = F.interpolate(
        seg_logits, size=(8, 8), mode='bilinear', align_corners=False)
    torch.testing.assert_close(losses['loss_seg_balanced'],
                               0.5 * _manual(up, labels))
    losses['loss_seg_balanced'].backward()
    assert seg_logits.grad is not None
