# Copyright (c) OpenMMLab. All rights reserved.
import pytest
import torch
import torch.nn.functional as F
from mmseg.registry import MODELS

from mmseg_dupl.models.losses.discrepancy_loss import DiscrepancyLoss


def _term(detached, live):
    """One direction: 1 + mean cos over channels' spatial vectors."""
    return 1 + F.cosine_similarity(
        detached.detach().flatten(2), live.flatten(2), dim=-1,
        eps=1e-6).mean()


def test_build_name_and_repr():
    loss = MODELS.build(dict(type='DiscrepancyLoss', loss_weight=0.1))
    assert isinstance(loss, DiscrepancyLoss)
    assert loss.loss_name == 'loss_disc'
    assert 'loss_weight=0.1' in repr(loss)
    assert DiscrepancyLoss(loss_name='loss_dis').loss_name == 'loss_dis'
    with pytest.raises(ValueError, match='loss_'):
        DiscrepancyLoss(loss_name='disc')


def test_values():
    loss = DiscrepancyLoss()
    a = torch.randn(2, 8, 4, 4)
    assert loss(a, a.clone()).item() == pytest.approx(4.)
    x, y = torch.zeros(1, 3, 2, 2), torch.zeros(1, 3, 2, 2)
    x[..., 0, :], y[..., 1, :] = 1., 2.
    assert loss(x, y).item() == pytest.approx(2.)
    weighted = DiscrepancyLoss(loss_weight=0.1)
    b = torch.randn(2, 8, 16)  # (B, D, N) works too
    c = torch.randn(2, 8, 16)
    exp = 0.1 * (_term(b, c) + _term(c, b))
    torch.testing.assert_close(weighted(b, c), exp)


@pytest.mark.parametrize('shape', [(2, 5, 3, 3), (1, 4, 6, 2)])
def test_gradients_follow_the_stop_gradient(shape):
    torch.manual_seed(0)
    a0, b0 = torch.randn(shape), torch.randn(shape)
    loss = DiscrepancyLoss(loss_weight=0.5)
    # Only b requires grad: the gradient is the first term's only.
    b = b0.clone().requires_grad_()
    loss(a0, b).backward()
    b_ref = b0.clone().requires_grad_()
    (0.5 * _term(a0, b_ref)).backward()
    torch.testing.assert_close(b.grad, b_ref.grad)
    # Both require grad: each gets the gradient of its own term only.
    a, b = a0.clone().requires_grad_(), b0.clone().requires_grad_()
    loss(a, b).backward()
    a_ref = a0.clone().requires_grad_()
    (0.5 * _term(b0, a_ref)).backward()
    torch.testing.assert_close(a.grad, a_ref.grad)
    torch.testing.assert_close(b.grad, b_ref.grad)


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match='share'):
        DiscrepancyLoss()(torch.zeros(1, 2, 3, 3), torch.zeros(1, 2, 3, 4))
