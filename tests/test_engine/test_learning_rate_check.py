# Copyright (c) OpenMMLab. All rights reserved.
"""A negative learning rate (paramwise lr_mult < 0) is refused, named."""
import os

import pytest
import torch
from mmengine.optim import DefaultOptimWrapperConstructor
from toy_runner import short_toy_options, toy_config
from torch import nn

from mmseg_dupl.engine.optimizers import check_learning_rates
from mmseg_dupl.engine.optimizers.learning_rate_check import custom_key_of
from mmseg_dupl.engine.runners import build_runner


class _Net(nn.Module):
    """Keys that overlap ('head' is in 'decode_head'), a top-level
    parameter and a nested one."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(2, 2), nn.LayerNorm(2))
        self.decode_head = nn.Linear(2, 2)
        self.aux_head = nn.Linear(2, 2)
        self.scale = nn.Parameter(torch.ones(1))


def _build(custom_keys: dict, lr: float = 1e-3):
    paramwise_cfg = dict(custom_keys=custom_keys)
    model = _Net()
    wrapper = DefaultOptimWrapperConstructor(
        dict(optimizer=dict(type='AdamW', lr=lr, weight_decay=0.01)),
        paramwise_cfg)(model)
    return wrapper, model, paramwise_cfg


def test_custom_key_matches_mmengine():
    # the key mmengine applied is the one named: each group's lr is the
    # base lr times the lr_mult of the key custom_key_of finds
    keys = dict(head=dict(lr_mult=2.), decode_head=dict(lr_mult=3.),
                backbone=dict(lr_mult=5.), scale=dict(lr_mult=7.))
    wrapper, model, _ = _build(keys)
    named = {id(p): n for n, p in model.named_parameters()}
    seen = set()
    for group in wrapper.optimizer.param_groups:
        name = named[id(group['params'][0])]
        key = custom_key_of(name, keys)
        assert group['lr'] == pytest.approx(1e-3 * keys[key]['lr_mult'])
        seen.add(key)
    assert seen == set(keys)  # every key, the overlapping ones included
    assert custom_key_of('neck.conv.weight', keys) is None


def test_negative_lr_mult_names_the_custom_key():
    wrapper, model, cfg = _build(dict(decode_head=dict(lr_mult=-10.),
                                      backbone=dict(lr_mult=0.1)))
    with pytest.raises(ValueError) as err:
        check_learning_rates(wrapper, model, cfg)
    assert str(err.value) == (
        "optim_wrapper.paramwise_cfg.custom_keys.decode_head={'lr_mult': "
        "-10.0} gives a negative learning rate (-0.01) to 2 parameters "
        '(decode_head.weight, decode_head.bias): they would train by '
        'gradient ascent. Use a positive lr_mult (0 freezes them).')


def test_positive_and_zero_rates_pass():
    wrapper, model, cfg = _build(dict(decode_head=dict(lr_mult=10.),
                                      backbone=dict(lr_mult=0.)))
    check_learning_rates(wrapper, model, cfg)
    # the same wrapper with the group of `scale` turned negative is refused
    group, = [g for g in wrapper.optimizer.param_groups
              if g['params'][0] is model.scale]
    group['lr'] = -1e-4
    with pytest.raises(ValueError, match=r'^optim_wrapper\.optimizer\.lr .*'
                       r'\(-0\.0001\) to 1 parameters \(scale\)'):
        check_learning_rates(wrapper, model, cfg)


def test_toy_run_refuses_before_training(toy_data_root, tmp_path):
    # the probe of issue 23: trained silently with lr 1e-4 x -10
    options = short_toy_options(toy_data_root, max_iters=4) + [
        'optim_wrapper.paramwise_cfg.custom_keys.decode_head.lr_mult=-10'
    ]
    runner = build_runner(toy_config(str(tmp_path), options))
    with pytest.raises(ValueError,
                       match=r'custom_keys\.decode_head=.*-10') as err:
        runner.train()
    assert 'decode_head' in str(err.value)
    assert runner.iter == 0
    assert not [n for n in os.listdir(tmp_path) if n.endswith('.pth')]
