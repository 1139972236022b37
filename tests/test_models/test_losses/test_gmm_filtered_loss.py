# Copyright (c) OpenMMLab. All rights reserved.
"""GMMFilteredLoss: a hand-built noisy case, the enabled switch, and the
wrapper inside a real mmseg EncoderDecoder / FCNHead."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from mmseg_dupl.models.losses import GMMFilteredLoss

SIZE = 16
NUM_NOISY = 28


def _noisy_case(seed=0):
    """Two 16x16 images, K = 3.

    Image 0: left half is class 1; of its 128 pixels, 100 are 'clean'
    (logit 2 on class 1, CE about 0.24) and the first 28 are 'noisy' (the
    logits say class 2 with margin 6, CE about 6). Image 1: the same
    label, every foreground pixel clean (one loss mode: nothing removed).
    Background pixels are confidently background.

    Returns:
        tuple: logits (2, 3, 16, 16), label (2, 16, 16), expected noisy
        mask (2, 16, 16).
    """
    g = torch.Generator().manual_seed(seed)
    label = torch.zeros(2, SIZE, SIZE, dtype=torch.long)
    label[:, :, :SIZE // 2] = 1
    logits = torch.zeros(2, 3, SIZE, SIZE)
    logits[:, 0] = 5.
    fg = label == 1
    logits[:, 0][fg] = 0.
    logits[:, 1][fg] = 2. + 0.3 * torch.rand(int(fg.sum()), generator=g)
    noisy = torch.zeros_like(fg)
    rows, cols = torch.nonzero(fg[0], as_tuple=True)
    noisy[0, rows[:NUM_NOISY], cols[:NUM_NOISY]] = True
    logits[0, 1][noisy[0]] = 0.
    logits[0, 2][noisy[0]] = 6. + torch.rand(NUM_NOISY, generator=g)
    return logits, label, noisy


def _hand_ce(logits, label, keep):
    """Mean CE over the kept pixels, written out."""
    logp = logits.log_softmax(dim=1)
    nll = -logp.gather(1, label.clamp(max=2)[:, None])[:, 0]
    return nll[keep].sum() / keep.sum()


def _loss(**kw):
    cfg = dict(type='GMMFilteredLoss', min_pixels=50)
    cfg.update(kw)
    return MODELS.build(cfg)


def test_removes_exactly_the_high_loss_mode_and_matches_hand_ce():
    logits, label, noisy = _noisy_case()
    loss_fn = _loss()
    mask = loss_fn.noise_mask(logits, label)
    assert torch.equal(mask, noisy)
    value = loss_fn(logits, label)
    expected = _hand_ce(logits, label, ~noisy)
    assert value.item() == pytest.approx(expected.item(), rel=1e-5)
    plain = F.cross_entropy(logits, label)
    assert value.item() < plain.item() - 0.3  # the noisy pixels dominate
    fg = (label == 1).sum().item()
    stats = loss_fn.last_fit.stats()
    assert stats['removed'] == pytest.approx(NUM_NOISY / fg)
    # image 0 is fitted with two modes; image 1 (clean) with one: its
    # means lie within eta, so its fit is skipped
    assert stats['skipped_pixels'] == 0 and stats['skipped_gap'] == 1
    assert loss_fn.last_fit.accepted.tolist() == [True, False]
    assert float(loss_fn.last_fit.mean_gap[0]) > 1.0


def test_gates_min_pixels_and_enabled_switch():
    logits, label, _ = _noisy_case()
    plain = F.cross_entropy(logits, label).item()
    # 128 fit pixels per image are not more than 200: no fit accepted
    assert _loss(min_pixels=200)(logits, label).item() == \
        pytest.approx(plain)
    assert _loss(min_pixels=200).last_fit is None
    loss_fn = _loss(min_pixels=200)
    loss_fn(logits, label)
    assert loss_fn.last_fit.stats()['skipped_pixels'] == 2  # both images
    loss_fn = _loss(enabled=False)
    assert loss_fn(logits, label).item() == pytest.approx(plain)
    assert loss_fn.last_fit is None
    loss_fn.enabled = True  # what GMMNoiseFilterHook does at start_iter
    assert loss_fn(logits, label).item() < plain - 0.3


def test_interface_weight_ignore_and_gradient():
    logits, label, noisy = _noisy_case()
    label[1, 0, :4] = 7  # another ignore value, passed through
    logits.requires_grad_(True)
    loss_fn = _loss(
        loss_cfg=dict(type='CrossEntropyLoss', loss_weight=2.0))
    assert loss_fn.loss_name == 'loss_ce'
    value = loss_fn(logits, label, weight=None, ignore_index=7)
    keep = ~noisy & (label != 7)
    # mmseg's default avg_non_ignore=False divides by all pixels
    expected = 2.0 * _hand_ce(logits.detach(), label, keep) * \
        keep.sum() / keep.numel()
    assert value.item() == pytest.approx(expected.item(), rel=1e-5)
    value.backward()
    # filtered pixels get no gradient, kept ones do
    grad = logits.grad.abs().sum(dim=1)
    assert grad[noisy].max() == 0
    assert (grad[keep] > 0).all()


def test_bad_config_is_named():
    with pytest.raises(ValueError, match='loss_name'):
        _loss(loss_name='ce')
    with pytest.raises(ValueError, match='gamma'):
        _loss(gamma=1.5)
    with pytest.raises(ValueError, match='same size'):
        _loss()(torch.zeros(1, 3, 8, 8), torch.zeros(1, 4, 4).long())
    assert _loss(loss_name='loss_gmm').loss_name == 'loss_gmm'
    assert 'enabled=True' in repr(_loss())


@MODELS.register_module(force=True)
class GMMTestIdentityBackbone(nn.Module):
    """Returns the image as the only feature map (logits = 1x1 conv)."""

    def forward(self, x):
        return (x, )

    def init_weights(self):
        pass


def _encoder_decoder(loss_decode):
    model = MODELS.build(
        dict(
            type='EncoderDecoder',
            backbone=dict(type='GMMTestIdentityBackbone'),
            decode_head=dict(
                type='FCNHead',
                in_channels=3,
                channels=3,
                num_convs=0,
                concat_input=False,
                dropout_ratio=0.,
                num_classes=3,
                loss_decode=loss_decode)))
    # conv_seg = identity: the input image *is* the logits map
    with torch.no_grad():
        model.decode_head.conv_seg.weight.copy_(torch.eye(3)[..., None,
                                                               None])
        model.decode_head.conv_seg.bias.zero_()
    return model


def _samples(label):
    """SegDataSamples carrying the (B, H, W) labels as ground truth."""
    return [
        SegDataSample(
            gt_sem_seg=PixelData(data=lab[None]),
            metainfo=dict(img_shape=(SIZE, SIZE), pad_shape=(SIZE, SIZE)))
        for lab in label
    ]


def test_in_mmseg_encoder_decoder_fcn_head():
    logits, label, noisy = _noisy_case()
    samples = _samples(label)
    filtered = _encoder_decoder(
        dict(type='GMMFilteredLoss', min_pixels=50))
    plain = _encoder_decoder(
        dict(type='CrossEntropyLoss', avg_non_ignore=True))
    assert isinstance(filtered.decode_head.loss_decode, GMMFilteredLoss)
    losses = filtered.loss(logits, samples)
    assert set(losses) == {'decode.loss_ce', 'decode.acc_seg'}
    expected = _hand_ce(logits, label, ~noisy)
    assert losses['decode.loss_ce'].item() == pytest.approx(
        expected.item(), rel=1e-5)
    plain_loss = plain.loss(logits, samples)['decode.loss_ce']
    assert plain_loss.item() == pytest.approx(
        F.cross_entropy(logits, label).item(), rel=1e-5)
    losses['decode.loss_ce'].backward()
    assert filtered.decode_head.conv_seg.weight.grad.abs().sum() > 0


def test_plain_encoder_decoder_filters_with_the_labelers_rule():
    """The filter a stock mmseg model gets is DuPLPseudoLabeler's rule (the
    same masks on the same logits), and it adds nothing to the model's
    checkpoint."""
    from mmseg_dupl.models.pseudo_labelers import DuPLPseudoLabeler
    logits, label, noisy = _noisy_case()
    model = _encoder_decoder(dict(type='GMMFilteredLoss', min_pixels=50))
    model.loss(logits, _samples(label))
    fit = model.decode_head.loss_decode.last_fit
    assert torch.equal(fit.noisy, noisy)
    labeler = DuPLPseudoLabeler(gmm=dict(min_pixels=50))
    assert torch.equal(labeler.noise_masks([logits], [label])[0], noisy)
    assert set(model.state_dict()) == {
        k for k in model.state_dict() if 'loss_decode' not in k}
