# Copyright (c) OpenMMLab. All rights reserved.
import copy

import numpy as np
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.registry import MODELS

import mmseg_dupl  # noqa: F401
from mmseg_dupl.models.losses.functional import balanced_seg_loss

from dupl_test_utils import make_batch, set_iter, tiny_model_cfg


def build(**train_cfg):
    torch.manual_seed(0)
    model = MODELS.build(tiny_model_cfg(**train_cfg))
    model.init_weights()
    return model


def run_loss(model, n, batch=None):
    set_iter(model, n)
    batch = batch or make_batch()
    return model(**batch, mode='loss')


def test_students_are_independent():
    model = build()
    p1 = dict(model.student1.named_parameters())
    p2 = dict(model.student2.named_parameters())
    assert p1.keys() == p2.keys()
    assert all(p1[k] is not p2[k] for k in p1)
    # heads are drawn one after the other: different random weights
    assert not torch.equal(p1['classifier.weight'], p2['classifier.weight'])
    assert not p1['backbone.pos_embed'].requires_grad


def test_phase_a_losses():
    losses = run_loss(build(), n=0)
    expected = {'s1.loss_cls', 's2.loss_cls', 's1.loss_ptc', 's2.loss_ptc',
                'loss_disc', 'image_threshold'}
    assert set(losses) == expected
    assert all(torch.isfinite(v) for v in losses.values())
    assert losses['image_threshold'].item() == pytest.approx(0.7)


def test_seg_weight_bracket_is_official():
    model = build()
    # n == phases.cam: the labels and seg losses are computed, weighted 0
    # (the reference's `n <= cam_iters` weight bracket)
    losses = run_loss(model, n=2)
    assert losses['s1.loss_seg'].item() == 0 == losses['s2.loss_seg'].item()
    losses = run_loss(model, n=3)
    assert losses['s1.loss_seg'].item() > 0
    assert 's1.loss_consistency' not in losses
    assert model.last_noise_fits is None  # phase B: no GMM filter


def test_phase_c_adds_filter_and_consistency():
    model = build()
    losses = run_loss(model, n=10)
    for key in ('s1.loss_consistency', 's2.loss_consistency'):
        assert key in losses
        assert torch.isfinite(losses[key])
    fits = model.last_noise_fits
    assert len(fits) == 2
    for fit in fits:
        stats = fit.stats()
        assert 0 <= stats['removed'] <= 1
        assert stats['skipped_pixels'] + stats['skipped_gap'] <= 2


def test_cross_supervision(monkeypatch):
    model = build()
    size = 32
    g = torch.Generator().manual_seed(1)
    y1 = torch.randint(0, 4, (2, size, size), generator=g)
    y2 = torch.randint(0, 4, (2, size, size), generator=g)
    produced = iter([y1, y2])  # student 1's labels, then student 2's
    monkeypatch.setattr(model.pseudo_labeler, 'seg_labels',
                        lambda *a, **k: next(produced))
    captured = {}
    original = model._seg_losses

    def spy(segs, targets, weight):
        captured['segs'] = segs
        return original(segs, targets, weight)

    monkeypatch.setattr(model, '_seg_losses', spy)
    losses = run_loss(model, n=4)  # phase B: no GMM filter
    seg1, seg2 = captured['segs']
    assert torch.allclose(losses['s1.loss_seg'],
                          0.2 * balanced_seg_loss(seg1, y2))
    assert torch.allclose(losses['s2.loss_seg'],
                          0.2 * balanced_seg_loss(seg2, y1))


def test_every_student_gets_gradients():
    model = build()
    losses = run_loss(model, n=5)
    total = sum(v for k, v in losses.items() if 'loss' in k)
    total.backward()
    for student in (model.student1, model.student2):
        assert student.decode_head.conv_seg.weight.grad is not None
        assert student.classifier.weight.grad.abs().sum() > 0
        assert student.backbone.layers[0].ffn.layers[0][0].weight.grad \
            .abs().sum() > 0


def test_loss_never_reads_pixel_labels():
    model = build()
    clean = make_batch()
    dirty = make_batch()
    for samples in dirty['data_samples'].values():
        for s in samples:
            s.gt_sem_seg = PixelData(
                data=torch.randint(0, 255, (1, 32, 32)))
    a = run_loss(model, 5, clean)
    b = run_loss(model, 5, dirty)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_loss_group_size_pools_per_group(monkeypatch):
    model = build(loss_group_size=1)
    batch = make_batch()
    grouped = run_loss(model, 5, batch)
    model.train_cfg['loss_group_size'] = None
    pooled = run_loss(model, 5, batch)
    # cls and disc are means (unchanged); ratio losses differ
    assert torch.allclose(grouped['s1.loss_cls'], pooled['s1.loss_cls'])
    assert not torch.allclose(grouped['s1.loss_ptc'], pooled['s1.loss_ptc'])


@pytest.mark.parametrize('predict_on', ['seg', 'cam', 'cam_aux', 'pseudo'])
@pytest.mark.parametrize('student', ['s1', 's2', 'ensemble'])
def test_predict_modes(predict_on, student):
    model = build().eval()
    model.test_cfg.update(predict_on=predict_on, student=student)
    batch = make_batch()
    inputs = batch['inputs']['weak']
    samples = batch['data_samples']['weak']
    for s in samples:
        s.set_metainfo(dict(ori_shape=(40, 36), padding_size=[0, 0, 0, 0]))
    with torch.no_grad():
        out = model(inputs, samples, mode='predict')
    for sample in out:
        pred = sample.pred_sem_seg.data
        assert pred.shape == (1, 40, 36)
        allowed = set(range(4)) | ({255} if predict_on == 'pseudo' else set())
        assert set(pred.unique().tolist()) <= allowed


def test_predict_cam_uses_only_present_classes():
    model = build().eval()
    model.test_cfg.update(predict_on='cam')
    batch = make_batch()
    samples = batch['data_samples']['weak']
    with torch.no_grad():
        out = model(batch['inputs']['weak'], samples, mode='predict')
    for sample in out:
        present = set((np.flatnonzero(sample.cls_labels) + 1).tolist())
        assert set(sample.pred_sem_seg.data.unique().tolist()) <= \
            present | {0}


def test_ensemble_is_mean_of_students():
    model = build().eval()
    x = make_batch()['inputs']['weak']
    with torch.no_grad():
        s1, s2 = model(x, mode='tensor')
        model.test_cfg['student'] = 'ensemble'
        ens = model.encode_decode(x, None)
        model.test_cfg['student'] = 's1'
        only1 = model.encode_decode(x, None)
    assert s1.shape == (2, 4, 4, 4)
    up = torch.nn.functional.interpolate(
        (s1 + s2) / 2, size=(32, 32), mode='bilinear', align_corners=False)
    assert torch.allclose(ens, up, atol=1e-6)
    assert not torch.allclose(ens, only1)


def test_single_student_checkpoint_loads_into_both():
    source = build()
    single = {
        k[len('student1.'):]: v.clone()
        for k, v in source.state_dict().items() if k.startswith('student1.')
    }
    target = build()
    torch.nn.init.constant_(target.student2.classifier.weight, 3.)
    target.load_state_dict(copy.deepcopy(single), strict=False)
    for name in ('student1', 'student2'):
        got = getattr(target, name).state_dict()
        for k, v in single.items():
            assert torch.equal(got[k], v), (name, k)


@pytest.mark.parametrize('key,value,match', [
    ('thresholds', dict(high=1.5), 'train_cfg.thresholds'),
    ('thresholds', dict(high_target=[0.5, 0.6]), 'thresholds.high_target'),
    ('phases', dict(cam=-1), 'train_cfg.phases.cam'),
    ('phases', dict(end=3), 'train_cfg.phases.end'),
    ('loss_after', dict(ptc='gmm_start'), 'loss_after.ptc'),
    ('conf_thr', 2., 'train_cfg.conf_thr'),
    ('cam_autocast', 'fp8', 'train_cfg.cam_autocast'),
])
def test_bad_train_cfg_names_the_key(key, value, match):
    cfg = tiny_model_cfg()
    cfg['train_cfg'][key] = value
    with pytest.raises(ValueError, match=match):
        MODELS.build(cfg)


@pytest.mark.parametrize('key', ['par', 'down_scale', 'gmm', 'ignore_index',
                                 'fix_token_box'])
def test_labeler_keys_in_train_cfg_name_the_labeler(key):
    cfg = tiny_model_cfg()
    cfg['train_cfg'][key] = 1
    with pytest.raises(ValueError, match=f'train_cfg.{key} is not a known '
                       'key; it is a key of model.pseudo_labeler'):
        MODELS.build(cfg)


def test_labeler_is_built_from_the_config():
    cfg = tiny_model_cfg()
    cfg['pseudo_labeler'] = dict(
        type='DuPLPseudoLabeler', down_scale=1, gmm=dict(min_pixels=7))
    model = MODELS.build(cfg)
    assert model.pseudo_labeler.down_scale == 1
    assert model.pseudo_labeler.gmm_cfg['min_pixels'] == 7
    assert model.pseudo_labeler.gmm_cfg['gamma'] == 0.95  # default kept
    cfg['pseudo_labeler']['gmm'] = dict(min_pixel=7)
    with pytest.raises(ValueError, match='unknown gmm keys'):
        MODELS.build(cfg)


def test_discrepancy_weight_is_set_once():
    cfg = tiny_model_cfg()
    cfg['discrepancy_loss'] = dict(type='DiscrepancyLoss', loss_weight=0.1)
    with pytest.raises(ValueError, match='loss_weights.disc'):
        MODELS.build(cfg)


@pytest.mark.parametrize('section,key,match', [
    ('train_cfg', 'phase', "train_cfg.phase is not a known key; did you "
     "mean 'phases'"),
    ('train_cfg', 'loss_weight', "did you mean 'loss_weights'"),
    ('test_cfg', 'predict', "test_cfg.predict is not a known key; did you "
     "mean 'predict_on'"),
    ('test_cfg', 'bkg_threshold', "did you mean 'bkg_thr'"),
])
def test_unknown_cfg_keys_suggest_the_closest(section, key, match):
    cfg = tiny_model_cfg()
    cfg.setdefault(section, {})[key] = 1
    with pytest.raises(ValueError, match=match):
        MODELS.build(cfg)


def test_unknown_nested_key_suggests_the_closest():
    cfg = tiny_model_cfg()
    cfg['train_cfg']['phases'] = dict(cam=2, gmm=5, end=12, gmmm=3)
    with pytest.raises(ValueError, match="phases.gmmm.*did you mean 'gmm'"):
        MODELS.build(cfg)


def test_bad_test_cfg_names_the_key():
    cfg = tiny_model_cfg()
    cfg['test_cfg'] = dict(student='s3')
    with pytest.raises(ValueError, match='test_cfg.student'):
        MODELS.build(cfg)


# The tiny schedule: A 0-1 | seg computed (weight 0) at 2 | B from 3 |
# GMM filter and consistency computed (weight 0) at 5 | consistency
# weighted from 6. A bare model that follows its schedule, no runner.
PHASE_KEYS = {
    0: {'s1.loss_cls', 's2.loss_cls', 's1.loss_ptc', 's2.loss_ptc',
        'loss_disc', 'image_threshold'},
    2: {'s1.loss_seg', 's2.loss_seg'},
    5: {'s1.loss_consistency', 's2.loss_consistency'},
}
ZERO_WEIGHTED = {2: 's1.loss_seg', 5: 's1.loss_consistency'}


@pytest.mark.parametrize('n', [0, 1, 2, 3, 4, 5, 6, 11, 100])
def test_bare_model_follows_the_schedule_of_its_iteration(n):
    model = build()
    expected = set()
    for first, keys in PHASE_KEYS.items():
        if n >= first:
            expected |= keys
    losses = run_loss(model, n)
    assert set(losses) == expected
    state = model.schedule.state(n)
    # every present class of the batch has the same tau_c here
    assert losses['image_threshold'].item() == pytest.approx(
        state.class_thresholds[0].item())
    for key, value in losses.items():
        if key.startswith('s1.loss_'):
            assert torch.isfinite(value), key
    if n in ZERO_WEIGHTED:
        assert losses[ZERO_WEIGHTED[n]].item() == 0


def test_threshold_descends_with_the_iteration():
    model = build()
    values = [
        run_loss(model, n)['image_threshold'].item() for n in (2, 6, 11)
    ]
    assert values[0] == pytest.approx(0.7)
    assert 0.55 < values[1] < 0.7
    assert values[2] == pytest.approx(0.55)


def test_loss_without_a_state_names_the_hooks_and_the_call():
    model = build()
    with pytest.raises(RuntimeError) as err:
        model(**make_batch(), mode='loss')
    msg = str(err.value)
    for name in ('SetIterInfoHook', 'CosineThresholdHook',
                 'GMMNoiseFilterHook', 'follow_schedule'):
        assert name in msg
    model.set_train_iter(3)  # one part set: the others are still named
    with pytest.raises(RuntimeError, match='class_thresholds'):
        model(**make_batch(), mode='loss')


def test_state_parts_are_set_apart():
    """The hooks' three setters give the state follow_schedule gives."""
    model = build()
    model.set_train_iter(6)
    model.set_class_thresholds(torch.full((3, ), 0.6))
    model.set_noise_filter(gmm_filter=False, consistency=True)
    state = model.phase_state()
    assert state.label_source == 'cam' and not state.gmm_filter
    assert state.weights['consistency'] == 0.05
    assert torch.equal(state.class_thresholds, torch.full((3, ), 0.6))
    with pytest.raises(ValueError, match=r'expected \(3,\)'):
        model.set_class_thresholds(torch.zeros(4))
    with pytest.raises(ValueError, match='set_train_iter'):
        model.set_train_iter(-1)


def test_consistency_without_the_gmm_filter():
    """train_cfg.noise_filter=False: phase C keeps its consistency term
    and skips the filter (the 'no GMM filter' ablation)."""
    model = build(noise_filter=False, conf_thr=0.)  # every pixel counts
    losses = run_loss(model, 10)
    assert losses['s1.loss_consistency'] > 0
    assert model.last_noise_fits is None
    assert not model.phase_state().gmm_filter


def test_single_student_baseline():
    cfg = tiny_model_cfg()
    cfg['num_students'] = 1
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    assert model.student2 is None and len(model.students) == 1
    losses = run_loss(model, n=10)
    assert 'loss_disc' not in losses and 's2.loss_cls' not in losses
    assert {'s1.loss_seg', 's1.loss_consistency'} <= set(losses)
    assert len(model.last_noise_fits) == 1
    with torch.no_grad():
        assert len(model(make_batch()['inputs']['weak'], mode='tensor')) == 1
    cfg['test_cfg'] = dict(student='ensemble')
    with pytest.raises(ValueError, match='num_students=1'):
        MODELS.build(cfg)


def test_scale1_cam_reuse_keeps_numerics():
    model = build()
    batch = make_batch()
    model.train_cfg['reuse_scale1_cam'] = False
    recomputed = run_loss(model, 5, batch)
    model.train_cfg['reuse_scale1_cam'] = True
    reused = run_loss(model, 5, batch)
    assert recomputed.keys() == reused.keys()
    for key in recomputed:
        assert torch.allclose(recomputed[key], reused[key], atol=1e-6), key


def test_keeps_visuals_for_the_cam_hook_on_request():
    model = build()
    run_loss(model, 10)
    assert model.last_visuals is None  # nothing kept unless asked
    model.keep_visuals = 1
    run_loss(model, 10)
    vis = model.last_visuals
    assert vis['img'].shape == (1, 32, 32, 3)
    assert vis['img'].dtype == torch.uint8
    assert len(vis['cams']) == 2 and vis['cams'][0].shape == (1, 3, 32, 32)
    assert len(vis['labels']) == 2 and vis['labels'][1].shape == (1, 32, 32)
    assert vis['noisy'][0].dtype == torch.bool
    from mmseg_dupl.engine.hooks.cam_visualization_hook import \
        draw_dupl_visuals
    grid = draw_dupl_visuals(vis, 1, 0.5, [[0, 0, 0]] * 4 + [[9, 9, 9]])
    assert grid.ndim == 3 and grid.shape[-1] == 3


def test_cam_autocast_switch_trains():
    """bf16 CAM passes: the same loss terms, all finite."""
    ref = run_loss(build(), n=10)
    new = run_loss(build(cam_autocast='bfloat16'), n=10)
    assert set(new) == set(ref)
    assert all(torch.isfinite(v) for v in new.values())
    # the classification terms do not depend on the CAMs at all
    assert torch.equal(new['s1.loss_cls'], ref['s1.loss_cls'])
