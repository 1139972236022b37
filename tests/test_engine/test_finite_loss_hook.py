# Copyright (c) OpenMMLab. All rights reserved.
"""Non-finite losses stop training before a checkpoint is written."""
import math
import os
from types import SimpleNamespace

import pytest
import torch
from toy_runner import short_toy_options, toy_config

from mmseg_dupl.engine.hooks import DurableCheckpointHook, FiniteLossHook
from mmseg_dupl.engine.runners import build_runner


def _runner(iteration: int):
    return SimpleNamespace(iter=iteration)


def test_names_iteration_and_every_bad_term():
    hook = FiniteLossHook()
    outputs = dict(loss=torch.tensor(math.nan),
                   **{'s1.loss_cls': torch.tensor(0.5),
                      's2.loss_seg': torch.tensor(math.inf),
                      's1.loss_ptc': torch.tensor(math.nan),
                      'noise_ratio.s1': torch.tensor(0.)})
    with pytest.raises(FloatingPointError) as err:
        hook.after_train_iter(_runner(6), 6, outputs=outputs)
    text = str(err.value)
    assert 'iteration 7' in text
    assert 's2.loss_seg=inf' in text and 's1.loss_ptc=nan' in text
    assert 'loss=nan' in text and 's1.loss_cls' not in text


def test_finite_losses_pass_and_only_losses_are_checked():
    hook = FiniteLossHook()
    # a non-loss entry (a ratio, a threshold) may be inf: not checked
    outputs = dict(loss=torch.tensor(1.), x=math.inf)
    hook.after_train_iter(_runner(0), 0, outputs=outputs)
    # and the call does check (a hook that checked nothing passed the
    # first call too): the same outputs with one inf loss term raise
    outputs['s1.loss_seg'] = torch.tensor(math.inf)
    with pytest.raises(FloatingPointError, match=r's1\.loss_seg=inf'):
        hook.after_train_iter(_runner(0), 0, outputs=outputs)


def test_runs_before_the_checkpoint_hook():
    from mmengine.runner.priority import get_priority
    assert get_priority(FiniteLossHook.priority) < get_priority(
        DurableCheckpointHook.priority)


def test_lr_1e30_stops_with_no_checkpoint(toy_data_root, tmp_path):
    # the probe of the issue: NaN losses from iteration 2 on, and before
    # this hook the run went on and saved non-finite weights
    options = short_toy_options(toy_data_root, max_iters=4) + [
        'optim_wrapper.optimizer.lr=1e30'
    ]
    runner = build_runner(toy_config(str(tmp_path), options))
    with pytest.raises(FloatingPointError, match=r'iteration \d.*loss') as err:
        runner.train()
    assert 'iteration 2:' in str(err.value)  # NaN from iteration 2
    assert not [n for n in os.listdir(tmp_path) if n.endswith('.pth')]
    assert not os.path.exists(tmp_path / 'last_checkpoint')


def test_checkpoint_hook_refuses_non_finite_weights():
    model = torch.nn.Linear(2, 2)
    with torch.no_grad():
        model.weight[0, 0] = math.nan
    hook = DurableCheckpointHook(interval=1, by_epoch=False)
    with pytest.raises(FloatingPointError, match=r'iter_3\.pth.*weight'):
        hook._save_checkpoint_with_step(
            SimpleNamespace(model=model), 3, meta={})
