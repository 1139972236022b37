# Copyright (c) OpenMMLab. All rights reserved.
"""Tests for CosineThresholdHook: Mock runners and a tiny real Runner."""
import os.path as osp
import uuid
from unittest.mock import Mock

import pytest
import torch
import torch.nn as nn
from mmengine.logging import MessageHub
from mmengine.model import BaseModel
from mmengine.registry import DATASETS, MODEL_WRAPPERS
from mmengine.runner import Runner
from mmseg.registry import HOOKS
from torch.utils.data import Dataset

from mmseg_dupl.engine.hooks.cosine_threshold_hook import CosineThresholdHook
from mmseg_dupl.engine.hooks.gmm_noise_filter_hook import \
    GMMNoiseFilterHook  # noqa: F401 (registers the hook for the Runner)
from mmseg_dupl.utils.safe_checkpoint import allow_mmengine_checkpoint_types

# Spec 7: the official per-class VOC targets (6 classes stay at 0.70).
VOC_END = [.70, .70, .70, .70, .55, .55, .55, .55, .70, .55,
           .55, .55, .55, .55, .55, .55, .55, .55, .70, .55]  # yapf: disable
VOC_CASES = [(1999, 0.70), (2000, 0.70), (6000, 0.682451), (11000, 0.624993),
             (15000, 0.576784), (19999, 0.55)]


class ThrToyModel(BaseModel):
    """Holds the schedule state of the DuPL model contract.

    In ``loss`` mode it records what the hooks wrote for this iteration.
    """

    def __init__(self, num_classes=20):
        super().__init__()
        self.linear = nn.Linear(2, 1)
        self.register_buffer('high_thr', torch.full((num_classes, ), 0.7))
        self.noise_filter_on = False
        self.consistency_on = False
        self.seen = {}

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.linear(torch.stack(inputs))
        if mode == 'loss':
            cur_iter = MessageHub.get_current_instance().get_info('iter')
            self.seen[cur_iter] = (self.high_thr.clone(), self.noise_filter_on,
                                   self.consistency_on)
            return dict(loss=out.pow(2).mean())
        return out


@MODEL_WRAPPERS.register_module(force=True)
class ThrDummyWrapper(BaseModel):
    """A model wrapper as DDP would be (``module`` attribute)."""

    def __init__(self, model):
        super().__init__()
        self.module = model

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)


@DATASETS.register_module(force=True)
class ThrToyDataset(Dataset):
    """Long enough for every run to stay in its first epoch: mmengine's
    infinite dataloader iterator sleeps 2 s at each epoch restart."""

    def __len__(self):
        return 12

    def __getitem__(self, idx):
        return dict(inputs=torch.full((2, ), float(idx)), data_samples=None)


def _mock_runner(model, cur_iter):
    runner = Mock()
    runner.model = model
    runner.iter = cur_iter
    return runner


def _run_hook(hook, model, cur_iter):
    runner = _mock_runner(model, cur_iter)
    hook.before_train(runner)
    hook.before_train_iter(runner, batch_idx=cur_iter)
    return runner


@pytest.mark.parametrize('n, expected', VOC_CASES)
def test_voc_values_broadcast_to_all_classes(n, expected):
    hook = CosineThresholdHook(0.70, 0.55, begin_iter=2000, end_iter=20000)
    model = ThrToyModel()
    runner = _run_hook(hook, model, n)
    torch.testing.assert_close(
        model.high_thr, torch.full((20, ), expected), atol=1e-6, rtol=0)
    runner.message_hub.update_scalar.assert_called_once()
    name, value = runner.message_hub.update_scalar.call_args.args
    assert name == 'train/thr_high'
    assert value == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize('n, expected', [(46000, 0.599999), (79999, 0.55),
                                         (0, 0.65)])
def test_coco_values(n, expected):
    hook = CosineThresholdHook(0.65, 0.55, begin_iter=12000, end_iter=80000)
    model = ThrToyModel(num_classes=80)
    _run_hook(hook, model, n)
    torch.testing.assert_close(
        model.high_thr, torch.full((80, ), expected), atol=1e-6, rtol=0)


def test_per_class_end_and_logged_mean():
    hook = CosineThresholdHook(0.70, VOC_END, 2000, 20000, log_name='thr')
    model = ThrToyModel()
    runner = _run_hook(hook, model, 11000)
    kept = torch.tensor(VOC_END) == 0.70
    assert int(kept.sum()) == 6
    torch.testing.assert_close(
        model.high_thr[kept], torch.full((6, ), 0.70), atol=1e-6, rtol=0)
    torch.testing.assert_close(
        model.high_thr[~kept], torch.full((14, ), 0.624993), atol=1e-6, rtol=0)
    name, value = runner.message_hub.update_scalar.call_args.args
    assert name == 'train/thr'
    assert value == pytest.approx((6 * 0.70 + 14 * 0.624993) / 20, abs=1e-6)


def test_writes_the_registered_buffer_in_place():
    hook = CosineThresholdHook(0.70, 0.55, 2000, 20000)
    model = ThrToyModel()
    buf = model.high_thr
    ptr = buf.data_ptr()
    _run_hook(hook, model, 15000)
    assert model.high_thr is buf and buf.data_ptr() == ptr
    assert buf.dtype == torch.float32
    assert 'high_thr' in dict(model.named_buffers())
    torch.testing.assert_close(model.state_dict()['high_thr'],
                               torch.full((20, ), 0.576784))


def test_unwraps_model_wrapper_and_can_skip_logging():
    hook = CosineThresholdHook(0.70, 0.55, 2000, 20000, log_name=None)
    model = ThrToyModel()
    runner = _run_hook(hook, ThrDummyWrapper(model), 19999)
    torch.testing.assert_close(model.high_thr, torch.full((20, ), 0.55))
    runner.message_hub.update_scalar.assert_not_called()


def test_fails_fast_on_missing_or_misfit_target():
    hook = CosineThresholdHook(target='low_thr')
    with pytest.raises(AttributeError, match="'low_thr'"):
        hook.before_train(_mock_runner(ThrToyModel(), 0))
    hook = CosineThresholdHook(end=VOC_END)
    with pytest.raises(ValueError, match=r'\(21,\)'):
        hook.before_train(_mock_runner(ThrToyModel(num_classes=21), 0))


@pytest.mark.parametrize('kwargs', [
    dict(begin_iter=10, end_iter=11),
    dict(start=[[0.7]]),
])
def test_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError, match='CosineThresholdHook'):
        CosineThresholdHook(**kwargs)


def test_is_registered_in_mmseg_hooks():
    hook = HOOKS.build(dict(type='CosineThresholdHook', end=VOC_END))
    assert isinstance(hook, CosineThresholdHook)


# --------------------------------------------------------------------------
# A tiny real Runner: begin 1 -> end 5, per-class end, 6 iterations.
THR_HOOK = dict(
    type='CosineThresholdHook',
    start=0.7,
    end=[0.7, 0.55, 0.5],
    begin_iter=1,
    end_iter=5)
GMM_HOOK = dict(type='GMMNoiseFilterHook', start_iter=2)


def _build_runner(work_dir, model, max_iters=6, **kwargs):
    # Runner(**kwargs) rather than from_cfg: a Config would deep-copy the
    # model instance whose ``seen`` record the tests read.
    cfg = dict(
        model=model,
        work_dir=work_dir,
        experiment_name=f'thr_hook_{uuid.uuid4().hex}',
        train_dataloader=dict(
            dataset=dict(type='ThrToyDataset'),
            sampler=dict(type='DefaultSampler', shuffle=False),
            batch_size=2,
            num_workers=0),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', by_epoch=False,
                            interval=3)),
        custom_hooks=[THR_HOOK, GMM_HOOK],
        log_processor=dict(by_epoch=False),
        default_scope='mmseg')
    cfg.update(kwargs)
    return Runner(**cfg)


def _expected_thr(n):
    return CosineThresholdHook(**{
        k: v
        for k, v in THR_HOOK.items() if k != 'type'
    }).threshold_at(n).float()


def _check_seen(seen, iters):
    assert sorted(seen) == list(iters)
    for n in iters:
        thr, filter_on, consistency_on = seen[n]
        torch.testing.assert_close(thr, _expected_thr(n))
        assert filter_on == (n >= 2) and consistency_on == (n > 2)


@pytest.mark.parametrize('wrapped', [False, True])
def test_real_runner_sets_schedule_every_iteration(tmp_path, wrapped):
    model = ThrToyModel(num_classes=3)
    runner = _build_runner(
        str(tmp_path),
        ThrDummyWrapper(model) if wrapped else model)
    runner.train()
    _check_seen(model.seen, range(6))
    # Hand-computed: iteration 3 is half-way, (1 - cos(pi * 2/3)) / 2 = 3/4.
    torch.testing.assert_close(model.seen[3][0],
                               torch.tensor([0.7, 0.5875, 0.55]))
    hist = runner.message_hub.get_scalar('train/thr_high').data[0]
    assert len(hist) == 6
    assert hist[-1] == pytest.approx((0.7 + 0.55 + 0.5) / 3)


def test_real_runner_resume_gives_uninterrupted_threshold(tmp_path):
    allow_mmengine_checkpoint_types()
    full = ThrToyModel(num_classes=3)
    _build_runner(str(tmp_path / 'full'), full).train()
    resumed = ThrToyModel(num_classes=3)
    runner = _build_runner(
        str(tmp_path / 'resumed'),
        resumed,
        resume=True,
        load_from=osp.join(str(tmp_path / 'full'), 'iter_3.pth'))
    runner.train()
    # Only iterations 3..5 ran after resuming, with the same values.
    _check_seen(resumed.seen, range(3, 6))
    for n in range(3, 6):
        torch.testing.assert_close(resumed.seen[n][0], full.seen[n][0])
    torch.testing.assert_close(resumed.high_thr, full.high_thr)
