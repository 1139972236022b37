# Copyright (c) OpenMMLab. All rights reserved.
"""Checkpoints of a real mmengine Runner load with ``weights_only=True``.

A tiny Runner (IterBasedTrainLoop, AdamW with ``lr_mult``, LinearLR +
PolyLR, validation with a numpy-valued metric, ``save_best``, a nested
``metainfo`` dict from the config) writes real checkpoints; they must resume
and load through mmengine's own ``torch.load`` call (no ``weights_only``
argument, so torch's default ``True`` applies) once the allow-list is set.
"""
import os
import os.path as osp
import pickle
import uuid

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.config import Config, ConfigDict
from mmengine.evaluator import BaseMetric
from mmengine.logging import HistoryBuffer
from mmengine.model import BaseModel
from mmengine.registry import DATASETS, METRICS, MODELS
from mmengine.runner import Runner, load_checkpoint
from torch.serialization import get_unsafe_globals_in_checkpoint
from torch.utils.data import Dataset

from mmseg_dupl.utils.safe_checkpoint import (_history_buffer_getattr,
                                              allow_mmengine_checkpoint_types,
                                              mmengine_checkpoint_safe_globals)


@MODELS.register_module(force=True)
class SafeCkptToyModel(BaseModel):
    """Linear model whose loss dict also carries a logging-only scalar."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.linear(torch.stack(inputs))
        if mode == 'loss':
            return dict(loss=out.pow(2).mean(), ratio=out.detach().mean())
        if mode == 'predict':
            return [dict(value=v) for v in out]
        return out


@DATASETS.register_module(force=True)
class SafeCkptToyDataset(Dataset):
    """Six 2-d points; keeps the (ConfigDict) metainfo it is built with."""

    def __init__(self, metainfo=None):
        self.metainfo = dict(classes=('a', 'b'), extra=metainfo)

    def __len__(self):
        return 6

    def __getitem__(self, idx):
        return dict(inputs=torch.full((2, ), float(idx)), data_samples=None)


@METRICS.register_module(force=True)
class SafeCkptToyMetric(BaseMetric):
    """Returns numpy scalars, as mmseg's IoUMetric does."""

    def process(self, data_batch, data_samples):
        self.results.extend(float(s['value']) for s in data_samples)

    def compute_metrics(self, results):
        return dict(score=np.round(np.float64(np.mean(results)), 2))


def _cfg(work_dir, max_iters, **kwargs):
    loader = dict(
        dataset=dict(
            type='SafeCkptToyDataset', metainfo=dict(label_map=dict(a=1))),
        sampler=dict(type='DefaultSampler', shuffle=False),
        batch_size=2,
        num_workers=0)
    cfg = dict(
        model=dict(type='SafeCkptToyModel'),
        work_dir=work_dir,
        experiment_name=f'safe_ckpt_{uuid.uuid4().hex}',
        train_dataloader=loader,
        val_dataloader=loader,
        val_evaluator=dict(type='SafeCkptToyMetric'),
        val_cfg=dict(),
        optim_wrapper=dict(
            optimizer=dict(type='AdamW', lr=1e-2, weight_decay=0.01),
            paramwise_cfg=dict(custom_keys={'bias': dict(lr_mult=10.)})),
        param_scheduler=[
            dict(type='LinearLR', start_factor=0.1, by_epoch=False, end=2),
            dict(type='PolyLR', by_epoch=False, begin=2, end=3)
        ],
        train_cfg=dict(by_epoch=False, max_iters=max_iters, val_interval=2),
        default_hooks=dict(
            logger=dict(type='LoggerHook', interval=1),
            checkpoint=dict(
                type='CheckpointHook',
                by_epoch=False,
                interval=2,
                save_best='score',
                rule='greater')),
        log_processor=dict(by_epoch=False),
        randomness=dict(seed=0),
        # Keep mmseg as the current default scope for later tests.
        default_scope='mmseg')
    cfg.update(kwargs)
    return Config(cfg)


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """Train 3 iterations; checkpoints at iter 2 (and best) and at the end."""
    work_dir = str(tmp_path_factory.mktemp('safe_ckpt'))
    runner = Runner.from_cfg(_cfg(work_dir, max_iters=3))
    runner.train()
    return work_dir, runner


def _globals_torch_refuses(path):
    """Globals that torch's default allow-list lacks.

    ``get_unsafe_globals_in_checkpoint`` leaves out user-allowed globals, so
    the user allow-list (possibly filled by earlier tests) is emptied for
    the call and restored afterwards.
    """
    saved = torch.serialization.get_safe_globals()
    torch.serialization.clear_safe_globals()
    try:
        return set(get_unsafe_globals_in_checkpoint(path))
    finally:
        torch.serialization.add_safe_globals(saved)


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_checkpoint_needs_exactly_the_allow_listed_globals(trained):
    work_dir, _ = trained
    names = {
        entry[1] if isinstance(entry, tuple) else
        f'{entry.__module__}.{entry.__qualname__}'
        for entry in mmengine_checkpoint_safe_globals()
    }
    ckpts = [f for f in os.listdir(work_dir) if f.endswith('.pth')]
    assert {'iter_2.pth', 'iter_3.pth'} <= set(ckpts)
    assert any(f.startswith('best_score') for f in ckpts)
    for ckpt in ckpts:
        unsafe = _globals_torch_refuses(osp.join(work_dir, ckpt))
        # Without the allow-list these would make torch.load fail ...
        assert 'mmengine.logging.history_buffer.HistoryBuffer' in unsafe
        assert 'mmengine.config.config.ConfigDict' in unsafe
        assert 'numpy._core.multiarray.scalar' in unsafe
        # ... and the allow-list covers every one of them.
        assert unsafe <= names, unsafe - names


def test_resume_restores_iteration_weights_and_schedule(trained):
    work_dir, first = trained
    allow_mmengine_checkpoint_types()
    resume_dir = osp.join(work_dir, 'resumed')
    runner = Runner.from_cfg(
        _cfg(
            resume_dir,
            max_iters=3,
            resume=True,
            load_from=osp.join(work_dir, 'iter_2.pth')))
    runner.train()
    # It continued at iteration 2 and ran only the third one ...
    assert runner.iter == 3
    assert not osp.exists(osp.join(resume_dir, 'iter_2.pth'))
    # ... landing on the uninterrupted run's weights and lr.
    for key, value in _state(first.model).items():
        torch.testing.assert_close(runner.model.state_dict()[key], value)
    assert runner.optim_wrapper.get_lr() == first.optim_wrapper.get_lr()
    hist = runner.message_hub.get_scalar('train/loss')
    assert isinstance(hist, HistoryBuffer)
    assert len(hist.data[0]) == 3  # 2 restored + 1 new loss entries
    assert runner.message_hub.get_info('best_score') == pytest.approx(
        first.message_hub.get_info('best_score'))


def test_load_checkpoint_via_load_from_path(trained):
    work_dir, first = trained
    allow_mmengine_checkpoint_types()
    model = SafeCkptToyModel()
    ckpt = load_checkpoint(
        model, osp.join(work_dir, 'iter_3.pth'), map_location='cpu')
    assert ckpt['meta']['iter'] == 3
    assert isinstance(ckpt['meta']['dataset_meta']['extra'], ConfigDict)
    for key, value in _state(first.model).items():
        torch.testing.assert_close(model.state_dict()[key], value)


class _Arbitrary:
    """Stands for any class a malicious checkpoint could reference."""

    def method(self):
        return 1


def test_weights_only_default_stays_on(tmp_path):
    allow_mmengine_checkpoint_types()
    path = str(tmp_path / 'arbitrary.pth')
    torch.save({'obj': _Arbitrary()}, path)
    with pytest.raises(pickle.UnpicklingError, match='_Arbitrary'):
        torch.load(path)
    assert os.environ.get('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD') is None


def test_getattr_is_restricted_to_history_buffer_statistics(tmp_path):
    allow_mmengine_checkpoint_types()
    assert _history_buffer_getattr(HistoryBuffer, 'mean') is \
        HistoryBuffer.mean
    with pytest.raises(pickle.UnpicklingError, match='not allow-listed'):
        _history_buffer_getattr(HistoryBuffer, 'update')
    with pytest.raises(pickle.UnpicklingError, match='not allow-listed'):
        _history_buffer_getattr(np.ndarray, 'mean')
    # A pickle asking getattr(HistoryBuffer, 'update') is refused too.
    path = str(tmp_path / 'getattr.pth')
    torch.save({'fn': HistoryBuffer.update}, path)
    with pytest.raises(pickle.UnpicklingError, match='not allow-listed'):
        torch.load(path)


def test_numpy_1_pickle_names_load(tmp_path):
    allow_mmengine_checkpoint_types()
    path = str(tmp_path / 'np1.pth')
    obj = {'arr': np.arange(3.), 'scalar': np.float64(0.5)}
    # The legacy (non-zip) format is one pickle stream, so the numpy 2
    # module path can be swapped for the one numpy 1.x writes.
    torch.save(obj, path, _use_new_zipfile_serialization=False)
    with open(path, 'rb') as f:
        data = f.read()
    assert b'numpy._core.multiarray' in data
    with open(path, 'wb') as f:
        f.write(
            data.replace(b'numpy._core.multiarray', b'numpy.core.multiarray'))
    loaded = torch.load(path)
    np.testing.assert_array_equal(loaded['arr'], obj['arr'])
    assert loaded['scalar'] == 0.5


def test_allow_list_is_idempotent():
    allow_mmengine_checkpoint_types()
    before = len(torch.serialization.get_safe_globals())
    allow_mmengine_checkpoint_types()
    assert len(torch.serialization.get_safe_globals()) == before
    torch.serialization.add_safe_globals(mmengine_checkpoint_safe_globals())
    assert len(torch.serialization.get_safe_globals()) == before
