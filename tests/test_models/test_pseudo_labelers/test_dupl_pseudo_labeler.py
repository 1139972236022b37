# Copyright (c) OpenMMLab. All rights reserved.
"""DuPLPseudoLabeler: tau_i, its intermediates, and that the segmentor's
training and 'pseudo' prediction go through it."""
import pytest
import torch
from mmseg.models.utils import resize
from mmseg.registry import MODELS

import mmseg_dupl  # noqa: F401
from mmseg_dupl.models.pseudo_labelers import (DuPLPseudoLabeler,
                                               PseudoLabels)
from mmseg_dupl.models.cam.cam_labels import (cam_to_label_dynamic_thr,
                                                scale_img_box)
from mmseg_dupl.models.refinement.par import PAR
from mmseg_dupl.models.refinement.refine_cams import \
    refine_cams_with_dynamic_thres

from dupl_test_utils import make_batch, set_iter, tiny_model_cfg

IGN = 255
FAST_PAR = dict(dilations=(1, 2), num_iter=2)


def test_registered_and_parameter_free():
    labeler = MODELS.build(dict(type='DuPLPseudoLabeler', par=FAST_PAR))
    assert isinstance(labeler, DuPLPseudoLabeler)
    assert not list(labeler.parameters()) and not labeler.state_dict()


def test_image_threshold_is_the_max_over_present_classes():
    class_thr = torch.tensor([0.70, 0.55, 0.60])
    cls = torch.tensor([[1., 0., 0.], [0., 1., 1.], [0., 1., 0.],
                        [0., 0., 0.]])
    tau = DuPLPseudoLabeler.image_thresholds(class_thr, cls)
    # the last image has no class: the mean of tau_c keeps it defined
    torch.testing.assert_close(
        tau, torch.tensor([0.70, 0.60, 0.55, (0.7 + 0.55 + 0.6) / 3]))


def _inputs(seed=0, b=2, c=3, size=32):
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(b, 3, size, size, generator=g)
    cams = [torch.rand(b, c, size, size, generator=g) for _ in range(2)]
    cls = torch.tensor([[1., 1., 0.], [0., 1., 1.]])
    tau = torch.tensor([0.7, 0.6])
    box = torch.tensor([[0, size, 0, size], [0, size - 8, 4, size]])
    return image, cams, cls, tau, box


def test_seg_labels_are_the_functional_pipeline():
    image, cams, cls, tau, box = _inputs()
    labeler = DuPLPseudoLabeler(par=FAST_PAR, down_scale=2)
    got = labeler.seg_labels(image, cams[0], cls, tau, 0.25, box)
    ref = refine_cams_with_dynamic_thres(
        image, cams[0] * cls[:, :, None, None], cls, tau, low_threshold=0.25,
        img_box=box, down_scale=2, par=PAR(**FAST_PAR))
    assert torch.equal(got, ref)
    assert (got[1, -8:] == IGN).all()  # outside the crop box


@pytest.mark.parametrize('fix_token_box', [False, True])
def test_token_labels(fix_token_box):
    _, cams, cls, tau, box = _inputs()
    labeler = DuPLPseudoLabeler(par=FAST_PAR, fix_token_box=fix_token_box)
    got = labeler.token_labels(cams[1], (4, 4), cls, tau, 0.25, box)
    small = resize(cams[1], (4, 4), mode='bilinear', align_corners=False)
    token_box = scale_img_box(box, 32, 4) if fix_token_box else box
    ref = cam_to_label_dynamic_thr(small, cls, tau, 0.25, token_box)
    assert got.shape == (2, 4, 4) and torch.equal(got, ref)


def _noisy_logits(labels, seed=0):
    """Logits that agree with ``labels`` except on a block of foreground
    pixels, where a wrong class wins by a wide margin (bimodal CE)."""
    g = torch.Generator().manual_seed(seed)
    k = 4
    safe = labels.clamp(max=k - 1)
    logits = torch.nn.functional.one_hot(safe, k).permute(0, 3, 1, 2) * 3.
    logits = logits.float() + 0.2 * torch.rand(logits.shape, generator=g)
    wrong = (labels != 0) & (labels != IGN)
    wrong[:, :, 16:] = False  # only the left half is contradicted
    logits[:, 0][wrong] = 9.
    return logits, wrong


def test_forward_returns_the_intermediates():
    image, cams, cls, tau, box = _inputs()
    labeler = DuPLPseudoLabeler(
        par=FAST_PAR, gmm=dict(min_pixels=10, min_loss=0.1,
                               min_mean_gap=1.0, gamma=0.95))
    plain = labeler(image, cams, cls, tau, 0.25, box)
    assert isinstance(plain, PseudoLabels) and plain.noisy is None
    assert plain.filtered is plain.labels and len(plain.labels) == 2
    for cam, label in zip(cams, plain.labels):
        assert torch.equal(label,
                           labeler.seg_labels(image, cam, cls, tau, 0.25,
                                              box))
    logits = [_noisy_logits(y, seed=k)[0]
              for k, y in enumerate(plain.labels)]
    pseudo = labeler(image, cams, cls, tau, 0.25, box, seg_logits=logits)
    for label, noisy, filtered, logit in zip(pseudo.labels, pseudo.noisy,
                                             pseudo.filtered, logits):
        assert noisy.dtype == torch.bool and noisy.shape == label.shape
        assert noisy.any(), 'the contradicted block must be flagged'
        fg = (label != 0) & (label != IGN)
        assert not (noisy & ~fg).any()  # only foreground is removed
        assert torch.equal(filtered, label.masked_fill(noisy, IGN))
        # flagged pixels are the high-loss ones
        ce = torch.nn.functional.cross_entropy(
            logit, label, ignore_index=IGN, reduction='none')
        assert ce[noisy].min() > ce[fg & ~noisy].median()
    # the logged share removed: flagged / foreground labels with a loss
    for fit, label, noisy in zip(pseudo.fits, pseudo.labels, pseudo.noisy):
        fg = ((label != 0) & (label != IGN)).sum()
        assert int(fit.foreground.sum()) == int(fg)  # all losses finite
        assert int(fit.noisy.sum()) == int(noisy.sum())
        assert fit.stats()['removed'] == pytest.approx(
            noisy.sum().item() / fg.item())


def test_noise_masks_batch_all_producers_in_one_fit():
    image, cams, cls, tau, box = _inputs()
    labeler = DuPLPseudoLabeler(
        par=FAST_PAR, gmm=dict(min_pixels=10, min_loss=0.1,
                               min_mean_gap=1.0, gamma=0.95))
    labels = labeler(image, cams, cls, tau, 0.25, box).labels
    logits = [_noisy_logits(y, seed=k)[0] for k, y in enumerate(labels)]
    both = labeler.noise_masks(logits, labels)
    alone = [labeler.noise_masks([s], [y])[0]
             for s, y in zip(logits, labels)]
    for a, b in zip(both, alone):
        assert torch.equal(a, b)  # per image fits: batching changes nothing


def test_segmentor_trains_and_predicts_through_it(monkeypatch):
    torch.manual_seed(0)
    model = MODELS.build(tiny_model_cfg())
    calls = []
    original = DuPLPseudoLabeler.forward

    def spy(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        calls.append((kwargs.get('seg_logits') is not None, out))
        return out

    monkeypatch.setattr(DuPLPseudoLabeler, 'forward', spy)
    for n, filtered in ((1, None), (4, False), (6, True)):
        calls.clear()
        set_iter(model, n)
        model(**make_batch(), mode='loss')
        if filtered is None:
            assert calls == []  # phase A: no seg labels
        else:
            assert len(calls) == 1 and calls[0][0] is filtered
    # 'pseudo' prediction = the labeler's seg labels of the model's state
    # (iteration 6 here), the chosen student's own (from its CAMs alone:
    # the stage runs with that student only), before the GMM filter
    model.eval().test_cfg.update(predict_on='pseudo', student='s2')
    seen, cam_students = [], []

    def fake_labels(self, *args, **kwargs):
        seen.append(args[3])
        return torch.full((2, 32, 32), 7, dtype=torch.long)

    real_cams = type(model).training_cams

    def spy_cams(self, student, *args, **kwargs):
        cam_students.append(student)
        return real_cams(self, student, *args, **kwargs)

    monkeypatch.setattr(DuPLPseudoLabeler, 'seg_labels', fake_labels)
    monkeypatch.setattr(type(model), 'training_cams', spy_cams)
    batch = make_batch()
    with torch.no_grad():
        out = model(batch['inputs']['weak'], batch['data_samples']['weak'],
                    mode='predict')
    expected = model.pseudo_labeler.image_thresholds(
        model.schedule.state(6).class_thresholds,
        torch.tensor([[1., 1., 0.], [0., 1., 1.]]))
    assert len(seen) == 1 and torch.equal(seen[0], expected)
    assert cam_students == [model.student2]  # student 2's CAMs only
    assert (out[0].pred_sem_seg.data == 7).all()  # the labeler's labels
