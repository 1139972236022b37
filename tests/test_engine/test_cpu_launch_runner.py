# Copyright (c) OpenMMLab. All rights reserved.
"""CPULaunchRunner carries the CPU launch, so tools/train.py is mmseg's."""
import datetime
import os.path as osp

import mmseg
import pytest
import torch
from mmengine.config import Config
from mmseg.registry import RUNNERS

import mmseg_dupl  # noqa: F401
from mmseg_dupl.engine.cpu_launch import process_group_kwargs, use_cpu_amp
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
    # CheckedRunner (issue 11) extends it: the CPU launch stays
    assert issubclass(RUNNERS.get(cfg.runner_type), CPULaunchRunner)


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


def test_dist_cfg_reaches_init_process_group():
    cfg = Config(
        dict(env_cfg=dict(
            dist_cfg=dict(backend='nccl', timeout=30, init_backend='torch'))))
    kwargs = process_group_kwargs(cfg)
    assert kwargs == dict(backend='gloo', timeout=datetime.timedelta(
        seconds=30))
    assert process_group_kwargs(Config()) == dict(backend='gloo')
    bad = Config(dict(env_cfg=dict(dist_cfg=dict(timeout='30s'))))
    with pytest.raises(TypeError, match='env_cfg.dist_cfg.timeout'):
        process_group_kwargs(bad)
