# Copyright (c) OpenMMLab. All rights reserved.
"""build_runner: the config's runner type whatever scope the process has."""
from mmengine.registry import DefaultScope, init_default_scope
from toy_runner import short_toy_options, toy_config

from mmseg_dupl.engine.runners import CheckedRunner, build_runner


def test_builds_the_configs_runner_after_an_mmpretrain_runner(
        toy_data_root, tmp_path):
    """An mmpretrain Runner (the toy pretraining) leaves 'mmpretrain' as
    the current scope; RUNNERS.build then missed 'CheckedRunner'."""
    init_default_scope('mmpretrain')
    try:
        cfg = toy_config(str(tmp_path), short_toy_options(toy_data_root, 4))
        runner = build_runner(cfg)
        assert type(runner) is CheckedRunner
        # and the Runner's own scope stays current for what it builds later
        assert len(runner.val_loop.dataloader.dataset) == 12
    finally:
        init_default_scope('mmseg')
    assert DefaultScope.get_current_instance().scope_name == 'mmseg'
