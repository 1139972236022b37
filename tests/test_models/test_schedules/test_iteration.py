# Copyright (c) OpenMMLab. All rights reserved.
"""The model follows ``runner.iter`` through the message hub, also after a
resume, with no hook of its own (a tiny real Runner)."""
import os.path as osp
import uuid

import pytest
import torch
import torch.nn as nn
from mmengine.model import BaseModel
from mmengine.registry import DATASETS
from mmengine.runner import Runner
from torch.utils.data import Dataset

from mmseg_dupl.models.schedules.iteration import (
    FINAL_PHASE_ITER, current_iter, max_iters, set_iteration,
    set_iteration_from_checkpoint)
from mmseg_dupl.utils.safe_checkpoint import allow_mmengine_checkpoint_types


class IterRecorder(BaseModel):
    """Records ``current_iter()`` and ``max_iters()`` in ``loss`` mode."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)
        self.seen = []

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.linear(torch.stack(inputs))
        if mode == 'loss':
            self.seen.append((current_iter(), max_iters()))
            return dict(loss=out.pow(2).mean())
        return out


@DATASETS.register_module(force=True)
class IterToyDataset(Dataset):
    """Long enough for one epoch (mmengine sleeps at epoch restarts)."""

    def __len__(self):
        return 12

    def __getitem__(self, idx):
        return dict(inputs=torch.full((2, ), float(idx)), data_samples=None)


def _runner(work_dir, model, **kwargs):
    cfg = dict(
        model=model,
        work_dir=work_dir,
        experiment_name=f'iter_{uuid.uuid4().hex}',
        train_dataloader=dict(
            dataset=dict(type='IterToyDataset'),
            sampler=dict(type='DefaultSampler', shuffle=False),
            batch_size=2,
            num_workers=0),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=dict(by_epoch=False, max_iters=6),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', by_epoch=False,
                            interval=3)),
        log_processor=dict(by_epoch=False),
        default_scope='mmseg')
    cfg.update(kwargs)
    return Runner(**cfg)


def test_runner_iteration_reaches_the_model_also_after_resume(tmp_path):
    allow_mmengine_checkpoint_types()
    full = IterRecorder()
    _runner(str(tmp_path / 'full'), full).train()
    assert full.seen == [(n, 6) for n in range(6)]
    resumed = IterRecorder()
    _runner(
        str(tmp_path / 'resumed'),
        resumed,
        resume=True,
        load_from=osp.join(str(tmp_path / 'full'), 'iter_3.pth')).train()
    assert resumed.seen == [(n, 6) for n in range(3, 6)]


def test_set_iteration_outside_a_runner():
    set_iteration(7)
    assert current_iter() == 7
    with pytest.raises(ValueError, match='set_iteration'):
        set_iteration(-1)


def test_nothing_set_is_the_final_phase(monkeypatch):
    from mmengine.logging import MessageHub
    hub = MessageHub.get_current_instance()
    monkeypatch.delitem(hub._runtime_info, 'iter', raising=False)
    assert current_iter() == FINAL_PHASE_ITER


def test_a_checkpoint_sets_its_last_trained_iteration():
    set_iteration(3)
    set_iteration_from_checkpoint(dict(meta=dict(iter=40)))
    assert current_iter() == 39  # iter_40.pth: iterations 0..39 trained
    set_iteration_from_checkpoint(dict(state_dict={}))  # no meta: kept
    assert current_iter() == 39
