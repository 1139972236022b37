# Copyright (c) OpenMMLab. All rights reserved.
"""CPULaunchRunner carries the CPU launch, so tools/train.py is mmseg's."""
import os.path as osp

import mmseg
import pytest
import torch
from mmengine.config import Config
from mmseg.registry import RUNNERS

import mmseg_dupl  # noqa: F401
from mmseg_dupl.engine.cpu_launch import use_cpu_amp
from mmseg_dupl.engine.runners import CPULaunchRunner

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_tools_train_is_a_verbatim_copy_of_mmseg():
    mmseg_train = osp.join(osp.dirname(mmseg.__file__), '.mim', 'tools',
                           'train.py')
    with open(mmseg_train) as a, open(osp.join(REPO, 'tools',
                                               'train.py')) as b:
        assert a.read() == b.read()


def test_configs_build_the_cpu_launch_runner():
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'dupl_vit-tiny_toy.py'))
    assert RUNNERS.get(cfg.runner_type) is CPULaunchRunner


@pytest.mark.skipif(torch.cuda.is_available(), reason='the CPU route only')
def test_amp_becomes_bf16_autocast_without_cuda():
    # what mmseg's tools/train.py --amp writes into the config
    cfg = Config(
        dict(
            optim_wrapper=dict(
                type='AmpOptimWrapper', loss_scale='dynamic',
                optimizer=dict(type='SGD', lr=0.1))))
    use_cpu_amp(cfg)
    assert cfg.optim_wrapper.type == 'AutocastOptimWrapper'
    assert 'loss_scale' not in cfg.optim_wrapper
    plain = Config(dict(optim_wrapper=dict(type='OptimWrapper')))
    use_cpu_amp(plain)
    assert plain.optim_wrapper.type == 'OptimWrapper'
