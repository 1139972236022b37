# Copyright (c) OpenMMLab. All rights reserved.
"""``tools/train.py --amp`` on a CPU-only host: bf16 autocast training."""
import subprocess
import sys

import pytest
import torch
from conftest import REPO, TOY_CONFIG, toy_train_options
from mmengine.config import Config

import mmseg_dupl  # noqa: F401
from mmseg_dupl.engine.cpu_launch import (amp_optim_wrapper_type,
                                          prepare_cpu_distributed)


@pytest.mark.skipif(torch.cuda.is_available(), reason='the CPU route only')
def test_amp_trains_in_bf16_on_cpu(toy_data_root, tmp_path):
    assert amp_optim_wrapper_type() == 'AutocastOptimWrapper'
    cmd = [sys.executable, 'tools/train.py', TOY_CONFIG, '--amp',
           '--work-dir', str(tmp_path), '--cfg-options'
           ] + toy_train_options(toy_data_root, max_iters=3, cam=1, gmm=2) + [
               'default_hooks.logger.interval=1',
               'train_dataloader.batch_size=2',
               # no validation: mmengine validates at max_iters, and bf16
               # on a CPU without bf16 units is slow (the AMP route is
               # training's; test_amp_bf16.py covers the islands)
               'val_cfg=None', 'val_dataloader=None', 'val_evaluator=None']
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True,
                          timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert 'AutocastOptimWrapper' in open(
        f'{tmp_path}/dupl_vit-tiny_toy.py').read()
    last = [line for line in log.splitlines() if 'Iter(train) [3/3]' in line]
    assert last and 's1.loss_consistency' in last[0] and 'nan' not in last[0]


def test_autocast_wrapper_runs_forward_in_bf16():
    from mmseg.registry import OPTIM_WRAPPERS
    layer = torch.nn.Linear(4, 4)
    wrapper = OPTIM_WRAPPERS.build(dict(
        type='AutocastOptimWrapper',
        optimizer=torch.optim.SGD(layer.parameters(), lr=0.1)))
    with wrapper.optim_context(layer):
        out = layer(torch.randn(2, 4))
    assert out.dtype == torch.bfloat16
    with pytest.raises(ValueError, match='optim_wrapper.dtype'):
        OPTIM_WRAPPERS.build(dict(
            type='AutocastOptimWrapper', dtype='int8',
            optimizer=torch.optim.SGD(layer.parameters(), lr=0.1)))


def test_prepare_cpu_distributed_is_a_no_op_without_launcher():
    cfg = Config(dict(launcher='none'))
    prepare_cpu_distributed(cfg)
    assert 'model_wrapper_cfg' not in cfg
