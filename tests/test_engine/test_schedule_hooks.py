# Copyright (c) OpenMMLab. All rights reserved.
"""SetIterInfoHook, CosineThresholdHook and GMMNoiseFilterHook: the state
they write into a DualStudentSegmentor is its DuPLSchedule's at every
phase boundary of the VOC and COCO schedules; their logs; their use on
other models (``target=...``)."""
import logging
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmseg.registry import HOOKS, MODELS

import mmseg_dupl  # noqa: F401
from mmseg_dupl.engine.hooks import set_iter_info_hook
from mmseg_dupl.models.segmentors.dual_student_config import merged

from dupl_test_utils import make_batch, tiny_model_cfg, tiny_student_cfg

SCHEDULE_HOOKS = ('SetIterInfoHook', 'CosineThresholdHook',
                  'GMMNoiseFilterHook')


class FakeRunner:
    """What the hooks read of mmengine's Runner."""

    def __init__(self, model, max_iters: int, classes=None):
        self.model = model
        self.iter = 0
        self.max_iters = max_iters
        self.message_hub = MessageHub.get_instance(
            f'schedule_hooks_{id(self)}')
        self.train_dataloader = SimpleNamespace(
            dataset=SimpleNamespace(metainfo=dict(classes=classes or ())))

    def scalar(self, key: str) -> float:
        return self.message_hub.get_scalar(f'train/{key}').current()


def _hooks(runner, **kwargs):
    hooks = [HOOKS.build(dict(type=t, **kwargs.get(t, {})))
             for t in SCHEDULE_HOOKS]
    for hook in hooks:
        hook.before_train(runner)
    return hooks


def _step(runner, hooks, n: int) -> None:
    runner.iter = n
    for hook in hooks:
        hook.before_train_iter(runner, n)


def _config_model(path: str):
    """A tiny model with the schedule of a shipped config."""
    cfg = Config.fromfile(path).model
    num_classes = cfg.num_classes
    model_cfg = tiny_model_cfg()
    model_cfg.update(num_classes=num_classes,
                     student=tiny_student_cfg(num_classes))
    model_cfg['train_cfg'] = merged(cfg.train_cfg, {})
    return MODELS.build(model_cfg)


def _assert_state_is_schedules(model, n: int) -> None:
    got, want = model.phase_state(), model.schedule.state(n)
    assert got.label_source == want.label_source, n
    assert torch.equal(got.class_thresholds, want.class_thresholds), n
    assert got.weights == want.weights, n
    assert got.gmm_filter == want.gmm_filter, n
    assert got.computed == want.computed, n


# (iteration, label source, a tau_c, seg weight, consistency weight,
#  GMM filter, terms computed with weight 0): algorithm.md §7, §9, §12
VOC_BOUNDARIES = [
    (1999, None, 0.70, 0., 0., False, set()),
    (2000, 'cam', 0.70, 0., 0., False, {'seg'}),
    (2001, 'cam', 0.70, 0.2, 0., False, set()),
    (6000, 'cam', 0.682451, 0.2, 0., False, set()),
    (7999, 'cam', None, 0.2, 0., False, set()),
    (8000, 'cam', None, 0.2, 0., True, {'consistency'}),
    (8001, 'cam', None, 0.2, 0.05, True, set()),
    (11000, 'cam', 0.624993, 0.2, 0.05, True, set()),
    (19999, 'cam', 0.55, 0.2, 0.05, True, set()),
]
COCO_BOUNDARIES = [
    (7999, None, 0.65, 0., 0., False, {'disc'}),
    (8000, 'cam_aux', 0.65, 0., 0., False, {'seg', 'ptc', 'disc'}),
    (8001, 'cam_aux', 0.65, 0.2, 0., False, {'ptc'}),
    (12000, 'cam_aux', 0.65, 0.2, 0., False, {'ptc'}),
    (12001, 'cam', None, 0.2, 0., False, set()),
    (31999, 'cam', None, 0.2, 0., False, set()),
    (32000, 'cam', None, 0.2, 0.05, True, set()),
    (46000, 'cam', 0.599999, 0.2, 0.05, True, set()),
    (79999, 'cam', 0.55, 0.2, 0.05, True, set()),
]


@pytest.mark.parametrize('config,boundaries,max_iters', [
    ('configs/dupl_vit-b_voc.py', VOC_BOUNDARIES, 20000),
    ('configs/dupl_vit-b_coco.py', COCO_BOUNDARIES, 80000),
])
def test_hooks_give_the_schedule_at_every_phase_boundary(
        config, boundaries, max_iters):
    model = _config_model(config)
    runner = FakeRunner(model, max_iters)
    hooks = _hooks(runner)
    for n, source, tau, w_seg, w_cons, gmm, zero in boundaries:
        _step(runner, hooks, n)
        _assert_state_is_schedules(model, n)
        state = model.phase_state()
        assert state.label_source == source, n
        if tau is not None:  # VOC: a class that descends (index 4)
            assert float(state.class_thresholds[4]) == pytest.approx(
                tau, abs=1e-6), n
        assert state.weights['seg'] == w_seg, n
        assert state.weights['consistency'] == w_cons, n
        assert state.gmm_filter is gmm, n
        zero_weighted = {t for t in state.computed
                         if state.weights[t] == 0}
        assert zero_weighted == zero, n


def test_hooks_log_tau_c_per_class_and_gmm_statistics():
    model = MODELS.build(tiny_model_cfg())
    runner = FakeRunner(model, 12, classes=('background', 'a', 'b', 'c'))
    hooks = _hooks(runner)
    _step(runner, hooks, 8)
    tau = model.schedule.class_thresholds(8)
    for name, value in zip('abc', tau.tolist()):
        assert runner.scalar(f'tau_c.{name}') == pytest.approx(value)
    model(**make_batch(), mode='loss')
    for hook in hooks:
        hook.after_train_iter(runner, 8)
    for k in (1, 2):
        removed = runner.scalar(f'gmm.s{k}.removed')
        assert 0 <= removed <= 1
        fitted = 2 - runner.scalar(f'gmm.s{k}.skipped_pixels')
        assert runner.scalar(f'gmm.s{k}.mean_gap') >= 0 or fitted == 0
    assert model.last_noise_fits is None  # logged once, then forgotten


def test_a_resumed_run_gets_the_same_state():
    """The state is a function of runner.iter alone."""
    model = MODELS.build(tiny_model_cfg())
    runner = FakeRunner(model, 12)
    hooks = _hooks(runner)
    for n in range(12):
        _step(runner, hooks, n)
    straight = model.phase_state()
    fresh = MODELS.build(tiny_model_cfg())
    resumed = FakeRunner(fresh, 12)
    _step(resumed, _hooks(resumed), 11)
    got = fresh.phase_state()
    assert torch.equal(got.class_thresholds, straight.class_thresholds)
    assert (got.label_source, got.weights, got.gmm_filter, got.computed) == (
        straight.label_source, straight.weights, straight.gmm_filter,
        straight.computed)


def test_late_phases_warn_at_the_start(monkeypatch):
    logged = []
    monkeypatch.setattr(set_iter_info_hook, 'print_log',
                        lambda msg, **kw: logged.append((msg, kw)))
    model = MODELS.build(tiny_model_cfg())
    _hooks(FakeRunner(model, 4))
    assert len(logged) == 1
    msg, kwargs = logged[0]
    assert "'gmm': 5" in msg and "'end': 12" in msg and 'max_iters=4' in msg
    assert kwargs['level'] == logging.WARNING


def test_dupl_values_are_configured_once():
    with pytest.raises(ValueError, match='model.train_cfg.thresholds'):
        HOOKS.build(dict(type='CosineThresholdHook', start=0.7))
    with pytest.raises(ValueError, match='model.train_cfg.phases.gmm'):
        HOOKS.build(dict(type='GMMNoiseFilterHook', start_iter=8000))


class Plain(torch.nn.Module):
    """A model that is not a DualStudentSegmentor."""

    def __init__(self):
        super().__init__()
        self.head = torch.nn.Module()
        self.head.thresh = 0.9
        self.head.buffer = torch.zeros(2)
        self.head.loss = MODELS.build(dict(type='GMMFilteredLoss'))


def test_dupl_mode_on_another_model_says_what_to_give():
    runner = FakeRunner(Plain(), 10)
    for name, match in (('CosineThresholdHook', 'target='),
                        ('GMMNoiseFilterHook', 'target='),
                        ('SetIterInfoHook', 'set_train_iter')):
        with pytest.raises(TypeError, match=match):
            HOOKS.build(dict(type=name)).before_train(runner)


@pytest.mark.parametrize('attr', ['thresh', 'buffer'])
def test_cosine_threshold_hook_anneals_any_attribute(attr):
    model = Plain()
    runner = FakeRunner(model, 10)
    hook = HOOKS.build(dict(type='CosineThresholdHook',
                            target=f'head.{attr}', start=0.9, end=0.5,
                            begin_iter=2))
    hook.before_train(runner)
    seen = []
    for n in (0, 2, 6, 9):
        _step(runner, [hook], n)
        value = getattr(model.head, attr)
        seen.append(float(torch.as_tensor(value).mean()))
        assert runner.scalar(f'head.{attr}') == pytest.approx(seen[-1])
    assert seen[0] == seen[1] == pytest.approx(0.9)
    assert 0.5 < seen[2] < 0.9 and seen[3] == pytest.approx(0.5)
    assert isinstance(model.head.buffer, torch.Tensor)


def test_hook_targets_are_checked():
    runner = FakeRunner(Plain(), 10)
    hook = HOOKS.build(dict(type='CosineThresholdHook', target='head.thr',
                            start=0.9, end=0.5, begin_iter=0))
    with pytest.raises(AttributeError, match="'head.thr'.*'thr'"):
        hook.before_train(runner)
    with pytest.raises(ValueError, match='needs begin_iter'):
        HOOKS.build(dict(type='CosineThresholdHook', target='head.thresh',
                         start=0.9, end=0.5))
    hook = HOOKS.build(dict(type='GMMNoiseFilterHook', target='head',
                            start_iter=3))
    with pytest.raises(TypeError, match='no enabled flag'):
        hook.before_train(runner)
    with pytest.raises(ValueError, match='start_iter'):
        HOOKS.build(dict(type='GMMNoiseFilterHook', target='head.loss'))


def test_gmm_hook_switches_a_filtered_loss_from_start_iter():
    model = Plain()
    runner = FakeRunner(model, 10)
    hook = HOOKS.build(dict(type='GMMNoiseFilterHook', target='head.loss',
                            start_iter=3))
    hook.before_train(runner)
    flags = []
    for n in range(5):
        _step(runner, [hook], n)
        flags.append(model.head.loss.enabled)
    assert flags == [False, False, False, True, True]
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 30, 30, generator=g)
    label = torch.randint(0, 3, (2, 30, 30), generator=g)
    model.head.loss(logits, label)
    hook.after_train_iter(runner, 4)
    assert runner.scalar('gmm.skipped_pixels') == 2  # < 1000 fit pixels
    assert model.head.loss.last_fit is None
