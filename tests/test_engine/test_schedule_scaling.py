# Copyright (c) OpenMMLab. All rights reserved.
"""``scale_schedule=True``: the whole toy schedule follows
``train_cfg.max_iters`` (phases, warm-up, LR decay, intervals), through the
runner as ``tools/train.py`` builds it; a scheduler that still ends
elsewhere is warned about."""
import logging
import os.path as osp

import pytest
from mmengine.config import Config

from mmseg_dupl.engine import schedule_scaling
from mmseg_dupl.engine.schedulers.poly_warmup_factor import \
    poly_warmup_factor
from mmseg_dupl.engine.schedule_scaling import (apply_scale_schedule,
                                                scale_schedule,
                                                schedule_length,
                                                warn_scheduler_mismatch)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY = osp.join(REPO, 'configs', 'dupl_vit-tiny_toy.py')
STAGE2 = osp.join(REPO, 'configs', 'stage2',
                  'segformer_mit-b0_1xb4-20k_pseudo-toy-128x128.py')


def test_toy_schedule_follows_max_iters():
    cfg = Config.fromfile(TOY)
    assert schedule_length(cfg) == 300
    cfg.merge_from_dict({'train_cfg.max_iters': 40, 'scale_schedule': True})
    apply_scale_schedule(cfg)
    assert cfg.train_cfg.max_iters == 40
    assert cfg.train_cfg.val_interval == 40
    assert cfg.param_scheduler[0].max_iters == 40
    assert cfg.param_scheduler[0].warmup_iters == 3  # 25 * 40 / 300
    phases = cfg.model.train_cfg.phases
    assert (phases.cam, phases.gmm, phases.end) == (6, 20, 40)
    assert cfg.default_hooks.checkpoint.interval == 40
    assert cfg.default_hooks.logger.interval == 20  # not a schedule count
    assert cfg.scale_schedule is False  # a dumped config is not rescaled
    # the learning rate decays to ~0 by the last of the 40 iterations
    # (unscaled: still 0.88x the base rate there, as the issue measured)
    poly = cfg.param_scheduler[0]
    last = poly_warmup_factor(39, poly.warmup_iters, poly.max_iters,
                              poly.warmup_ratio, poly.power)
    unscaled = poly_warmup_factor(39, 25, 300, poly.warmup_ratio, poly.power)
    assert last < 0.05 and unscaled > 0.85


def test_without_the_switch_nothing_moves():
    cfg = Config.fromfile(TOY)
    cfg.merge_from_dict({'train_cfg.max_iters': 40})
    apply_scale_schedule(cfg)
    assert cfg.param_scheduler[0].max_iters == 300
    assert cfg.model.train_cfg.phases.end == 300


def test_stage2_recipe_scales_warmup_decay_and_gmm_start():
    cfg = Config.fromfile(STAGE2)
    assert schedule_length(cfg) == 20000
    changes = scale_schedule(cfg, 200)
    linear, poly = cfg.param_scheduler
    assert (linear.end, poly.begin, poly.end) == (15, 15, 200)
    gmm_hook = [h for h in cfg.custom_hooks
                if h.type == 'GMMNoiseFilterHook'][0]
    assert gmm_hook.start_iter == 80  # 8000 / 100
    assert cfg.train_cfg.val_interval == 200
    assert cfg.default_hooks.checkpoint.interval == 200
    assert cfg.default_hooks.logger.interval == 10
    assert 'param_scheduler.1.end 20000 -> 200' in changes


def test_tiny_runs_keep_every_scheduler_and_phase():
    cfg = Config.fromfile(STAGE2)
    scale_schedule(cfg, 10)
    linear, poly = cfg.param_scheduler
    assert (linear.begin, linear.end, poly.begin, poly.end) == (0, 1, 1, 10)


def test_tiny_runs_keep_every_phase():
    cfg = Config.fromfile(TOY)
    scale_schedule(cfg, 4)
    phases = cfg.model.train_cfg.phases
    assert (phases.cam, phases.gmm, phases.end) == (1, 2, 4)
    assert cfg.param_scheduler[0].warmup_iters == 1


def test_mismatch_is_warned(monkeypatch):
    logged = []
    monkeypatch.setattr(
        schedule_scaling, 'print_log',
        lambda msg, logger=None, level=logging.INFO: logged.append(
            (level, msg)))
    cfg = Config.fromfile(TOY)
    cfg.train_cfg.max_iters = 40
    messages = warn_scheduler_mismatch(cfg)
    assert messages == ['param_scheduler.0.max_iters=300']
    assert logged[-1][0] == logging.WARNING
    assert 'differs from train_cfg.max_iters=40' in logged[-1][1]
    scale_schedule(cfg, 40)
    assert warn_scheduler_mismatch(cfg) == []
    assert 'scale_schedule: 300 -> 40 iterations' in logged[-1][1]


def test_epoch_schedules_are_refused():
    cfg = Config.fromfile(TOY)
    cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=2)
    with pytest.raises(ValueError, match='max_epochs'):
        scale_schedule(cfg, 4)


def test_runner_applies_it(toy_data_root, tmp_path):
    """The runner tools/train.py builds scales before building: the dumped
    config and the built LR scheduler follow the 4 iterations."""
    from toy_runner import short_toy_options, toy_config

    from mmseg_dupl.engine.runners import build_runner
    options = [o for o in short_toy_options(toy_data_root, 4)
               if not o.startswith(('param_scheduler', 'model.train_cfg'))]
    cfg = toy_config(str(tmp_path), options + ['scale_schedule=True'])
    runner = build_runner(cfg)
    assert runner.cfg.param_scheduler[0].max_iters == 4
    assert runner.cfg.model.train_cfg.phases.end == 4
    assert runner.cfg.train_cfg.max_iters == 4
