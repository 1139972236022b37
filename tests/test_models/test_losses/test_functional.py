# Copyright (c) OpenMMLab. All rights reserved.
import math

import pytest
import torch
import torch.nn.functional as F

from mmseg_dupl.models.losses.functional import (balanced_seg_loss,
                                                 consistency_loss,
                                                 discrepancy_loss,
                                                 multilabel_cls_loss,
                                                 per_pixel_ce, ptc_loss)

IGN = 255


def test_multilabel_cls_loss_hand_value():
    logits = torch.tensor([[0., 2.], [-1., 1.]])
    labels = torch.tensor([[1., 0.], [0., 1.]])

    def sig(v):
        return 1 / (1 + math.exp(-v))

    terms = [
        math.log(sig(0.)),
        math.log(1 - sig(2.)),
        math.log(1 - sig(-1.)),
        math.log(sig(1.))
    ]
    exp = -sum(terms) / 4
    assert multilabel_cls_loss(logits, labels).item() == pytest.approx(exp)
    with pytest.raises(ValueError, match='B, C'):
        multilabel_cls_loss(logits, labels[:, :1])


def test_per_pixel_ce_hand_values():
    # Two classes, logits (0, ln 3): p = (1/4, 3/4).
    logits = torch.tensor([0., math.log(3.)]).view(1, 2, 1,
                                                   1).repeat(1, 1, 1, 3)
    label = torch.tensor([[[0, 1, IGN]]])
    ce = per_pixel_ce(logits, label)
    assert ce.shape == (1, 1, 3)
    torch.testing.assert_close(
        ce, torch.tensor([[[math.log(4.), math.log(4. / 3.), 0.]]]))


def test_balanced_seg_loss_vs_manual():
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 3, 5)
    label = torch.randint(0, 4, (2, 3, 5))
    label[0, 0] = IGN
    ce = F.cross_entropy(logits, label, ignore_index=IGN, reduction='none')
    bg, fg = label == 0, (label > 0) & (label < 4)
    exp = 0.5 * (
        ce[bg].sum() / (bg.sum() + 1e-6) + ce[fg].sum() / (fg.sum() + 1e-6))
    torch.testing.assert_close(balanced_seg_loss(logits, label), exp)
    torch.testing.assert_close(
        balanced_seg_loss(logits, label, num_fg_classes=3), exp)
    with pytest.raises(ValueError, match='num_fg_classes'):
        balanced_seg_loss(logits, label, num_fg_classes=20)


def test_balanced_seg_loss_no_foreground_counts_zero():
    logits = torch.tensor([0., math.log(3.)]).view(1, 2, 1,
                                                   1).repeat(1, 1, 1, 2)
    label = torch.tensor([[[0, IGN]]])
    # bg mean = ln 4, fg sum 0 over 0 + 1e-6 pixels.
    loss = balanced_seg_loss(logits, label)
    assert loss.item() == pytest.approx(0.5 * math.log(4.), rel=1e-5)


def test_ptc_loss_vs_manual_loop():
    torch.manual_seed(0)
    feats = torch.randn(2, 5, 2, 3)
    mask = torch.randint(0, 2, (2, 6, 6)).float()
    mask[0, 1] = IGN
    mask[:, range(6), range(6)] = IGN
    pos_sum = neg_sum = 0.
    n_pos = n_neg = 0
    for b in range(2):
        f = feats[b].reshape(5, 6)
        for i in range(6):
            for j in range(6):
                zi = f[:, i] / max(f[:, i].norm().item(), 1e-8)
                zj = f[:, j] / max(f[:, j].norm().item(), 1e-8)
                s = abs(float(zi @ zj))
                if mask[b, i, j] == 1:
                    pos_sum, n_pos = pos_sum + s, n_pos + 1
                elif mask[b, i, j] == 0:
                    neg_sum, n_neg = neg_sum + s, n_neg + 1
    exp = 0.5 * (1 - pos_sum / (n_pos + 1)) + 0.5 * neg_sum / (n_neg + 1)
    assert ptc_loss(feats, mask).item() == pytest.approx(exp, rel=1e-5)
    with pytest.raises(ValueError, match='aff_mask'):
        ptc_loss(feats, mask[:, :5, :5])


def test_ptc_loss_extremes():
    # All tokens parallel (or anti-parallel, |cos|) and all positive: 0.5*
    # (1 - n/(n+1)); no negative pairs.
    feats = torch.tensor([1., -2., 3., 0.5]).view(1, 1, 2,
                                                  2).repeat(1, 3, 1, 1)
    mask = torch.ones(1, 4, 4)
    mask[:, range(4), range(4)] = IGN
    assert ptc_loss(feats, mask).item() == pytest.approx(0.5 * (1 - 12 / 13))


def test_discrepancy_loss_values():
    a = torch.randn(2, 4, 3, 3)
    assert discrepancy_loss(a, a.clone()).item() == pytest.approx(4.)
    assert discrepancy_loss(a, -a).item() == pytest.approx(0., abs=1e-6)
    # Orthogonal per channel: spatial vectors with disjoint support.
    x = torch.zeros(1, 2, 2, 2)
    y = torch.zeros(1, 2, 2, 2)
    x[:, :, 0] = 1.
    y[:, :, 1] = 1.
    assert discrepancy_loss(x, y).item() == pytest.approx(2.)
    # Cosine per channel over space (not per pixel over channels).
    p = torch.tensor([[[1., 0.], [0., 1.]]])  # (B=1, D=2, N=2)
    q = torch.tensor([[[1., 0.], [1., 0.]]])
    # channel 0: cos 1; channel 1: cos 0 -> mean 0.5 -> 2 * 1.5 = 3.
    assert discrepancy_loss(p, q).item() == pytest.approx(3.)


def test_discrepancy_loss_stop_gradient():
    torch.manual_seed(0)
    a0, b0 = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    a, b = a0.clone(), b0.clone().requires_grad_()
    discrepancy_loss(a, b).backward()
    b_only = b0.clone().requires_grad_()
    F.cosine_similarity(
        a0.flatten(2), b_only.flatten(2), dim=-1, eps=1e-6).mean().backward()
    torch.testing.assert_close(b.grad, b_only.grad)
    # Symmetric case: each side gets the gradient of its own term only.
    a, b = a0.clone().requires_grad_(), b0.clone().requires_grad_()
    discrepancy_loss(a, b).backward()
    a_only = a0.clone().requires_grad_()
    F.cosine_similarity(
        b0.flatten(2), a_only.flatten(2), dim=-1, eps=1e-6).mean().backward()
    torch.testing.assert_close(a.grad, a_only.grad)
    torch.testing.assert_close(b.grad, b_only.grad)


def test_consistency_loss_hand_values():
    # Weak: pixel 0 confident class 1, pixel 1 confident class 0,
    # pixel 2 unsure.
    weak = torch.tensor([[[-5., 5., 0.], [5., -5., 0.1]]]).view(1, 2, 1, 3)
    strong = torch.tensor([[[0., 0., 0.], [math.log(3.), 0.,
                                           0.]]]).view(1, 2, 1,
                                                       3).requires_grad_()
    peer = torch.tensor([[[IGN, IGN, IGN]]])
    loss = consistency_loss(strong, weak, peer)
    # Region: pixels 0 and 1; CE: -log(3/4) (target 1), -log(1/2).
    exp = (math.log(4. / 3.) + math.log(2.)) / 2
    assert loss.item() == pytest.approx(exp, rel=1e-6)
    # A labelled peer pixel leaves the region.
    loss = consistency_loss(strong, weak, torch.tensor([[[IGN, 0, IGN]]]))
    assert loss.item() == pytest.approx(math.log(4. / 3.), rel=1e-6)
    loss = consistency_loss(
        strong, weak, peer, valid=torch.tensor([[[False, True, True]]]))
    assert loss.item() == pytest.approx(math.log(2.), rel=1e-6)
    # Empty region: a zero that keeps the graph.
    zero = consistency_loss(strong, weak, torch.zeros(1, 1, 3).long())
    assert zero.item() == 0 and zero.requires_grad
    zero.backward()
    assert strong.grad.abs().sum() == 0
    # No gradient reaches the weak logits (detached target).
    weak_g = weak.clone().requires_grad_()
    consistency_loss(strong, weak_g, peer).backward()
    assert weak_g.grad is None
    with pytest.raises(ValueError, match='peer_label'):
        consistency_loss(strong, weak, peer[..., :2])
