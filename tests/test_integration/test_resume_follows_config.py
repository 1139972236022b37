# Copyright (c) OpenMMLab. All rights reserved.
"""A resumed run follows its config (issue 23, item 3): scheduler lengths
follow train_cfg.max_iters unless set on purpose, the checkpoint's
scheduler settings give way to the config's with a warning naming each,
resuming at max_iters says so, and a single-student checkpoint is refused
by a two-student config."""
import logging
import os.path as osp
import shutil

import pytest
import torch
from conftest import REPO, TOY_CONFIG
from mmengine.config import Config
from mmseg.registry import PARAM_SCHEDULERS
from toy_runner import short_toy_options, toy_config

from mmseg_dupl.engine.runners import ResumeMismatchError, build_runner
from mmseg_dupl.engine.runners.scheduler_length import (
    follow_train_max_iters, length_mismatches)
from mmseg_dupl.engine.schedulers.poly_warmup_factor import \
    poly_warmup_factor

BASELINE_CONFIG = osp.join(REPO, 'configs',
                           'baseline_single-student_vit-tiny_toy.py')
FIRST_ITERS = 4  # the checkpoint every test resumes (warm-up 2)


pytestmark = pytest.mark.usefixtures('one_torch_thread')


class _Records(logging.Handler):
    """Collects the messages of a runner's logger."""

    def __init__(self, logger):
        super().__init__(logging.DEBUG)
        self.messages = []
        logger.addHandler(self)

    def emit(self, record):
        self.messages.append(record.getMessage())

    def text(self) -> str:
        return '\n'.join(self.messages)


# -- scheduler length, without training ----------------------------------


def _toy(options: dict) -> Config:
    cfg = Config.fromfile(TOY_CONFIG)
    cfg.merge_from_dict(options)
    return cfg


def test_scheduler_follows_train_max_iters():
    cfg = _toy({'train_cfg.max_iters': 600})
    assert cfg.param_scheduler[0].max_iters == 300  # what it was
    notes = follow_train_max_iters(cfg)
    assert cfg.param_scheduler[0].max_iters == 600
    assert len(notes) == 1 and 'max_iters: 300 -> 600' in notes[0]


def test_scheduler_length_set_on_purpose_stays(tmp_path):
    # overridden itself
    cfg = _toy({'train_cfg.max_iters': 600,
                'param_scheduler.0.max_iters': 450})
    assert follow_train_max_iters(cfg) == []
    assert cfg.param_scheduler[0].max_iters == 450
    # another value in the config file
    path = tmp_path / 'short_decay.py'
    path.write_text(f'_base_ = [{TOY_CONFIG!r}]\n'
                    'param_scheduler = [dict(type="PolyWithWarmupLR", '
                    'warmup_iters=25, max_iters=200, by_epoch=False)]\n')
    cfg = Config.fromfile(str(path))
    cfg.merge_from_dict({'train_cfg.max_iters': 600})
    assert follow_train_max_iters(cfg) == []
    assert cfg.param_scheduler[0].max_iters == 200


def test_no_follow_below_the_warm_up():
    # a smoke test of the VOC schedule (warm-up 1500): the scheduler keeps
    # its length (and the start warns) rather than becoming invalid
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'dupl_vit-b_voc.py'))
    cfg.merge_from_dict({'train_cfg.max_iters': 2})
    assert follow_train_max_iters(cfg) == []
    assert cfg.param_scheduler[0].max_iters == 20000


def test_length_mismatch_is_reported():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.)
    poly = PARAM_SCHEDULERS.build(
        dict(type='PolyWithWarmupLR', warmup_iters=2, max_iters=450),
        default_args=dict(optimizer=optimizer))
    lines = length_mismatches([poly], 600)
    assert lines == ['param_scheduler[0] (PolyWithWarmupLR) max_iters=450 '
                     'but train_cfg.max_iters=600']
    assert length_mismatches([poly], 450) == []


def test_runner_follows_and_warns_at_start(toy_data_root, tmp_path):
    options = [
        o for o in short_toy_options(toy_data_root, 8)
        if not o.startswith('param_scheduler.0.max_iters')
    ]
    # only train_cfg.max_iters set (8): the scheduler follows it
    runner = build_runner(toy_config(str(tmp_path / 'a'), options))
    assert runner.cfg.param_scheduler[0].max_iters == 8
    dumped = Config.fromfile(str(tmp_path / 'a' / osp.basename(TOY_CONFIG)))
    assert dumped.param_scheduler[0].max_iters == 8
    # set on purpose to another value: kept, and a warning at start
    runner = build_runner(
        toy_config(str(tmp_path / 'b'),
                   options + ['param_scheduler.0.max_iters=6']))
    records = _Records(runner.logger)
    runner._train_loop = runner.build_train_loop(runner._train_loop)
    runner.optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
    schedulers = runner.build_param_scheduler(runner.param_schedulers)
    assert schedulers[0].max_iters == 6
    assert ('param_scheduler[0] (PolyWithWarmupLR) max_iters=6 but '
            'train_cfg.max_iters=8: the schedule does not span the '
            'training') in records.text()


# -- resumed runs --------------------------------------------------------


def _config(work_dir, data_root, max_iters, resume=False, extra=(),
            config=TOY_CONFIG):
    options = short_toy_options(data_root, max_iters) + list(extra)
    if config == BASELINE_CONFIG:  # no GMM phase in the baseline
        options = [o for o in options if 'phases.gmm' not in o]
    return toy_config(work_dir, options, resume, config)


@pytest.fixture(scope='module')
def first_run(toy_data_root, tmp_path_factory) -> str:
    work_dir = str(tmp_path_factory.mktemp('first'))
    build_runner(_config(work_dir, toy_data_root, FIRST_ITERS)).train()
    return work_dir


def _copy(first_run: str, dest: str) -> str:
    shutil.copytree(first_run, dest)
    with open(osp.join(dest, 'last_checkpoint'), 'w') as f:
        f.write(osp.join(dest, f'iter_{FIRST_ITERS}.pth'))
    return dest


def test_resume_follows_the_config(first_run, toy_data_root, tmp_path):
    work_dir = _copy(first_run, str(tmp_path / 'run'))
    cfg = _config(work_dir, toy_data_root, 6, resume=True,
                  extra=['param_scheduler.0.warmup_iters=5'])
    runner = build_runner(cfg)
    records = _Records(runner.logger)
    runner.train()
    log = records.text()
    for change in ('(PolyWithWarmupLR) max_iters: 4 -> 6',
                   '(PolyWithWarmupLR) warmup_iters: 2 -> 5',
                   'train_cfg.max_iters: 4 -> 6',
                   'model.train_cfg.phases.end: 4 -> 6',
                   'param_scheduler.0.warmup_iters: 2 -> 5'):
        assert change in log, change
    assert 'lr of param group 0 at step 4' in log
    # the lr of iterations 4 and 5 is the config's schedule
    group = runner.optim_wrapper.optimizer.param_groups[0]
    lrs = runner.message_hub.get_scalar('train/lr').data[0][-2:]
    expected = [
        group['initial_lr'] * poly_warmup_factor(s, 5, 6, 1e-6, 0.9)
        for s in (4, 5)
    ]
    assert lrs == pytest.approx(expected, rel=1e-6)
    # so does mmengine's base_lr (the group it adds to track it)
    base = runner.optim_wrapper.base_param_settings['initial_lr']
    base_lrs = runner.message_hub.get_scalar('train/base_lr').data[0][-2:]
    assert base_lrs == pytest.approx(
        [base * poly_warmup_factor(s, 5, 6, 1e-6, 0.9) for s in (4, 5)],
        rel=1e-6)
    # (the checkpoint's schedule, over at 4, would have frozen the lr)
    old = group['initial_lr'] * poly_warmup_factor(3, 2, 4, 1e-6, 0.9)
    assert lrs[0] != pytest.approx(old, rel=1e-3)


def test_resume_at_max_iters_says_so(first_run, toy_data_root, tmp_path):
    work_dir = _copy(first_run, str(tmp_path / 'run'))
    runner = build_runner(
        _config(work_dir, toy_data_root, FIRST_ITERS, resume=True))
    records = _Records(runner.logger)
    runner.train()
    log = records.text()
    assert (f'is at iteration {FIRST_ITERS} and train_cfg.max_iters is '
            f'{FIRST_ITERS}: nothing left to train') in log
    # the same config: no difference reported
    assert 'come from the config' not in log
    assert 'the config differs' not in log


def test_single_student_checkpoint_refused(toy_data_root, tmp_path):
    work_dir = str(tmp_path / 'run')
    build_runner(
        _config(work_dir, toy_data_root, 3, config=BASELINE_CONFIG)).train()
    runner = build_runner(_config(work_dir, toy_data_root, 4, resume=True))
    with pytest.raises(ResumeMismatchError,
                       match=r'single-student checkpoint .*no student2.*'
                       r'load_from='):
        runner.train()
    assert runner.iter == 0  # nothing loaded into the optimizer, no step
