# Copyright (c) OpenMMLab. All rights reserved.
"""Tests for PolyWithWarmupLR (algorithm.md §9.1).

Step indexing: mmengine's ``_ParamScheduler.__init__`` calls ``step()``
once, which applies the value of step 0; ``ParamSchedulerHook`` then calls
``step()`` in ``after_train_iter``. So during the training iteration with
``runner.iter == s``, the optimizer update uses ``lr(s)``. The pure-torch
test replays that order (check, ``optimizer.step()``, ``scheduler.step()``)
and the Runner test records the lr inside the model's ``train_step``, i.e.
the lr the optimizer actually applies at ``runner.iter``.
"""
import os.path as osp
import uuid

import pytest
import torch
import torch.nn as nn
from mmengine.logging import MessageHub
from mmengine.model import BaseModel
from mmengine.registry import DATASETS
from mmengine.runner import Runner
from mmseg.registry import PARAM_SCHEDULERS
from torch.utils.data import Dataset

from mmseg_dupl.engine.schedulers.poly_with_warmup_lr import PolyWithWarmupLR
from mmseg_dupl.engine.schedulers.poly_warmup_factor import poly_warmup_factor
from mmseg_dupl.utils.safe_checkpoint import allow_mmengine_checkpoint_types

# algorithm.md §9.1, group G0 (lr 6e-5); G2/G3 use lr_mult 10 -> ten times
# these.
SPEC_LR = {
    0: 6.0e-11,
    199: 7.960e-06,
    1499: 5.996e-05,
    1500: 5.593e-05,
    1999: 5.457e-05,
    7999: 3.789e-05,
    19999: 8.077e-09
}


def test_spec_values_with_torch_adamw_two_groups():
    weight = nn.Parameter(torch.zeros(2))
    head = nn.Parameter(torch.zeros(2))
    groups = [dict(params=[weight], lr=6e-5), dict(params=[head], lr=6e-4)]
    optimizer = torch.optim.AdamW(
        groups, betas=(0.9, 0.999), weight_decay=0.01)
    scheduler = PolyWithWarmupLR(optimizer)
    seen = {}
    for step in range(20000):
        if step in SPEC_LR:
            seen[step] = [group['lr'] for group in optimizer.param_groups]
        weight.grad = torch.ones(2)
        head.grad = torch.ones(2)
        optimizer.step()
        scheduler.step()
    assert sorted(seen) == sorted(SPEC_LR)
    for step, expected in SPEC_LR.items():
        g0, g2 = seen[step]
        assert g0 == pytest.approx(expected, rel=1e-3), step
        assert g2 == pytest.approx(10 * expected, rel=1e-3), step
        # Computed from the step alone: exact, no drift from chaining.
        assert g0 == 6e-5 * poly_warmup_factor(step)
    # The lr is never updated past max_iters.
    assert optimizer.param_groups[0]['lr'] == pytest.approx(
        8.077e-09, rel=1e-3)


def test_absolute_step_after_warmup_is_not_mmengine_polylr():
    # Hand-computed with warmup 2, max 4, power 1, ratio 0.5:
    # s=0: 0.5, s=1: 1 - 0.5 * 0.5 = 0.75, s=2: 1 - 2/4 = 0.5, s=3: 0.25.
    param = nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=2.0)
    scheduler = PolyWithWarmupLR(
        optimizer, warmup_iters=2, warmup_ratio=0.5, power=1.0, max_iters=4)
    lrs = []
    for _ in range(6):
        lrs.append(optimizer.param_groups[0]['lr'])
        optimizer.step()
        scheduler.step()
    # After max_iters the lr stays at its last value.
    assert lrs == pytest.approx([1.0, 1.5, 1.0, 0.5, 0.5, 0.5])


def test_state_dict_round_trip_continues_exactly():
    params = [nn.Parameter(torch.zeros(1))]
    optimizer = torch.optim.SGD(params, lr=1.0)
    scheduler = PolyWithWarmupLR(optimizer, warmup_iters=3, max_iters=10)
    for _ in range(5):
        optimizer.step()
        scheduler.step()
    state = scheduler.state_dict()
    opt_state = optimizer.state_dict()
    params2 = [nn.Parameter(torch.zeros(1))]
    optimizer2 = torch.optim.SGD(params2, lr=1.0)
    scheduler2 = PolyWithWarmupLR(optimizer2, warmup_iters=3, max_iters=10)
    optimizer2.load_state_dict(opt_state)
    scheduler2.load_state_dict(state)
    for _ in range(3):
        optimizer.step()
        scheduler.step()
        optimizer2.step()
        scheduler2.step()
        assert optimizer2.param_groups[0]['lr'] == \
            optimizer.param_groups[0]['lr']
    assert optimizer.param_groups[0]['lr'] == poly_warmup_factor(8, 3, 10)


@pytest.mark.parametrize('kwargs, match', [
    (dict(by_epoch=True), 'by_epoch'),
    (dict(warmup_iters=30, max_iters=20), 'warmup_iters'),
])
def test_rejects_bad_arguments(kwargs, match):
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    with pytest.raises(ValueError, match=match):
        PolyWithWarmupLR(optimizer, **kwargs)


# --------------------------------------------------------------------------
# A real Runner: AdamW with a x10 head (paramwise lr_mult), 8 iterations.
BASE_LR = 6e-5
SCHED = dict(
    type='PolyWithWarmupLR',
    warmup_iters=3,
    warmup_ratio=1e-6,
    power=0.9,
    max_iters=8,
    by_epoch=False)


class LRToyModel(BaseModel):
    """Records the lr of each group at the optimizer update of each iter."""

    def __init__(self):
        super().__init__()
        self.backbone = nn.Linear(2, 2)
        self.head = nn.Linear(2, 1)
        self.lrs = {}

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.head(self.backbone(torch.stack(inputs)))
        return dict(loss=out.pow(2).mean()) if mode == 'loss' else out

    def train_step(self, data, optim_wrapper):
        cur_iter = MessageHub.get_current_instance().get_info('iter')
        # paramwise_cfg makes one group per parameter: keep distinct lrs.
        self.lrs[cur_iter] = sorted(
            {group['lr']
             for group in optim_wrapper.param_groups})
        return super().train_step(data, optim_wrapper)


@DATASETS.register_module(force=True)
class LRToyDataset(Dataset):
    """Long enough to stay in one epoch (mmengine sleeps 2 s per restart)."""

    def __len__(self):
        return 16

    def __getitem__(self, idx):
        return dict(inputs=torch.full((2, ), float(idx)), data_samples=None)


def _build_runner(work_dir, model, sched=SCHED, **kwargs):
    return Runner(
        model=model,
        work_dir=work_dir,
        experiment_name=f'poly_lr_{uuid.uuid4().hex}',
        train_dataloader=dict(
            dataset=dict(type='LRToyDataset'),
            sampler=dict(type='DefaultSampler', shuffle=False),
            batch_size=2,
            num_workers=0),
        optim_wrapper=dict(
            optimizer=dict(type='AdamW', lr=BASE_LR, weight_decay=0.01),
            paramwise_cfg=dict(custom_keys={'head': dict(lr_mult=10.)})),
        param_scheduler=[sched],
        train_cfg=dict(by_epoch=False, max_iters=8),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', by_epoch=False,
                            interval=4)),
        log_processor=dict(by_epoch=False),
        default_scope='mmseg',
        **kwargs)


def _expected(cur_iter):
    factor = poly_warmup_factor(cur_iter, 3, 8, 1e-6, 0.9)
    return [BASE_LR * factor, 10 * BASE_LR * factor]


def test_real_runner_lr_used_at_each_iteration(tmp_path):
    model = LRToyModel()
    _build_runner(str(tmp_path), model).train()
    assert sorted(model.lrs) == list(range(8))
    for cur_iter, lrs in model.lrs.items():
        assert lrs == pytest.approx(_expected(cur_iter), rel=1e-12)
    # Iteration 0 trains with the 1e-6 warm-up start, not the base lr.
    assert model.lrs[0][0] == pytest.approx(BASE_LR * 1e-6)


def test_real_runner_without_by_epoch_key(tmp_path):
    # The Runner then injects end=max_epochs (1 for an iteration loop);
    # the schedule must still run to max_iters.
    sched = {k: v for k, v in SCHED.items() if k != 'by_epoch'}
    model = LRToyModel()
    _build_runner(str(tmp_path), model, sched=sched).train()
    assert model.lrs[5] == pytest.approx(_expected(5), rel=1e-12)


def test_real_runner_resume_continues_the_schedule(tmp_path):
    allow_mmengine_checkpoint_types()
    full = LRToyModel()
    _build_runner(str(tmp_path / 'full'), full).train()
    resumed = LRToyModel()
    _build_runner(
        str(tmp_path / 'resumed'),
        resumed,
        resume=True,
        load_from=osp.join(str(tmp_path / 'full'), 'iter_4.pth')).train()
    assert sorted(resumed.lrs) == [4, 5, 6, 7]
    for cur_iter in range(4, 8):
        assert resumed.lrs[cur_iter] == full.lrs[cur_iter]


def test_is_registered_in_mmseg_param_schedulers():
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = PARAM_SCHEDULERS.build(
        dict(type='PolyWithWarmupLR', max_iters=10, warmup_iters=2),
        default_args=dict(optimizer=optimizer))
    assert isinstance(scheduler, PolyWithWarmupLR)
    assert optimizer.param_groups[0]['lr'] == pytest.approx(1e-6)
