# Copyright (c) OpenMMLab. All rights reserved.
"""Tests for GMMNoiseFilterHook: Mock runners and a tiny real Runner."""
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

from mmseg_dupl.engine.hooks.gmm_noise_filter_hook import GMMNoiseFilterHook


class GMMToyModel(BaseModel):
    """Owns the two switches; reports noise ratios while filtering.

    ``noise_ratio.s1`` is ``iter / 10`` so the logged history can be checked
    value by value.
    """

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)
        self.noise_filter_on = False
        self.consistency_on = False
        self.seen = {}

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.linear(torch.stack(inputs))
        if mode != 'loss':
            return out
        cur_iter = MessageHub.get_current_instance().get_info('iter')
        self.seen[cur_iter] = (self.noise_filter_on, self.consistency_on)
        losses = dict(loss_seg=out.pow(2).mean())
        if self.noise_filter_on:
            losses['noise_ratio.s1'] = torch.tensor(cur_iter / 10)
            losses['noise_ratio.s2'] = torch.tensor(0.5)
        return losses


@MODEL_WRAPPERS.register_module(force=True)
class GMMDummyWrapper(BaseModel):
    """A model wrapper as DDP would be (``module`` attribute)."""

    def __init__(self, model):
        super().__init__()
        self.module = model

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)


@DATASETS.register_module(force=True)
class GMMToyDataset(Dataset):
    """Long enough to stay in one epoch (mmengine sleeps 2 s per restart)."""

    def __len__(self):
        return 12

    def __getitem__(self, idx):
        return dict(inputs=torch.full((2, ), float(idx)), data_samples=None)


def _mock_runner(model, cur_iter):
    runner = Mock()
    runner.model = model
    runner.iter = cur_iter
    return runner


@pytest.mark.parametrize('cur_iter, filter_on, consistency_on',
                         [(0, False, False), (7999, False, False),
                          (8000, True, False), (8001, True, True),
                          (19999, True, True)])
def test_official_bracket(cur_iter, filter_on, consistency_on):
    hook = GMMNoiseFilterHook(start_iter=8000)
    model = GMMToyModel()
    runner = _mock_runner(model, cur_iter)
    hook.before_train(runner)
    hook.before_train_iter(runner, batch_idx=0)
    assert model.noise_filter_on is filter_on
    assert model.consistency_on is consistency_on


@pytest.mark.parametrize('cur_iter, consistency_on', [(31999, False),
                                                      (32000, True)])
def test_coco_consistency_starts_with_the_filter(cur_iter, consistency_on):
    hook = GMMNoiseFilterHook(start_iter=32000, consistency_delay=0)
    model = GMMToyModel()
    hook.before_train_iter(_mock_runner(model, cur_iter), batch_idx=0)
    assert model.noise_filter_on is consistency_on
    assert model.consistency_on is consistency_on


def test_rejects_negative_delay():
    with pytest.raises(ValueError, match='consistency_delay'):
        GMMNoiseFilterHook(consistency_delay=-1)


def test_switches_back_off_for_earlier_iterations():
    hook = GMMNoiseFilterHook(start_iter=3)
    model = GMMToyModel()
    hook.before_train_iter(_mock_runner(model, 5), batch_idx=0)
    hook.before_train_iter(_mock_runner(model, 2), batch_idx=0)
    assert model.noise_filter_on is False and model.consistency_on is False


def test_custom_attribute_names_and_wrapper():
    hook = GMMNoiseFilterHook(
        start_iter=1, filter_attr='gmm_on', consistency_attr='reg_on')
    model = GMMToyModel()
    model.gmm_on = model.reg_on = False
    wrapper = GMMDummyWrapper(model)
    runner = _mock_runner(wrapper, 2)
    hook.before_train(runner)
    hook.before_train_iter(runner, batch_idx=0)
    assert model.gmm_on is True and model.reg_on is True
    assert model.noise_filter_on is False  # untouched default names
    assert not hasattr(wrapper, 'gmm_on')


@pytest.mark.parametrize(
    'kwargs, missing',
    [
        (dict(filter_attr='gmm_on'), 'gmm_on'),
        (dict(consistency_attr='linear'), 'linear'),  # exists, but not a bool
    ])
def test_fails_fast_on_missing_switch(kwargs, missing):
    hook = GMMNoiseFilterHook(**kwargs)
    with pytest.raises(AttributeError, match=repr(missing)):
        hook.before_train(_mock_runner(GMMToyModel(), 0))


def test_rejects_negative_start():
    with pytest.raises(ValueError, match='start_iter'):
        GMMNoiseFilterHook(start_iter=-1)


def test_is_registered_in_mmseg_hooks():
    hook = HOOKS.build(dict(type='GMMNoiseFilterHook', start_iter=5))
    assert isinstance(hook, GMMNoiseFilterHook) and hook.start_iter == 5


@pytest.mark.parametrize('wrapped', [False, True])
def test_real_runner_switches_and_logs_noise_ratio_once(tmp_path, wrapped):
    model = GMMToyModel()
    runner = Runner(
        model=GMMDummyWrapper(model) if wrapped else model,
        work_dir=str(tmp_path),
        experiment_name=f'gmm_hook_{uuid.uuid4().hex}',
        train_dataloader=dict(
            dataset=dict(type='GMMToyDataset'),
            sampler=dict(type='DefaultSampler', shuffle=False),
            batch_size=2,
            num_workers=0),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=dict(by_epoch=False, max_iters=5),
        default_hooks=dict(checkpoint=None),
        custom_hooks=[dict(type='GMMNoiseFilterHook', start_iter=2)],
        log_processor=dict(by_epoch=False),
        default_scope='mmseg')
    runner.train()
    assert model.seen == {
        0: (False, False),
        1: (False, False),
        2: (True, False),
        3: (True, True),
        4: (True, True)
    }
    # mmengine's RuntimeInfoHook logs the model's outputs: one entry per
    # filtering iteration, none added by the hook.
    hist = runner.message_hub.get_scalar('train/noise_ratio.s1').data[0]
    torch.testing.assert_close(
        torch.from_numpy(hist),
        torch.tensor([0.2, 0.3, 0.4], dtype=torch.float64))
    assert len(runner.message_hub.get_scalar('train/noise_ratio.s2').data[0]) \
        == 3
