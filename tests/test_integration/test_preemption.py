# Copyright (c) OpenMMLab. All rights reserved.
"""SIGTERM / SIGUSR1 finish the iteration, save, and exit with status 75;
--resume from that checkpoint is bit-identical to an uninterrupted run
(issue 23, item 1).

The in-process runs get a real signal (the process sends it to itself from
a hook, at a known iteration); test_sigterm_from_outside sends it to a
tools/train.py process from outside, as SLURM or torchrun does.
test_ddp_failures.py covers two ranks."""
import os
import os.path as osp
import re
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import REPO, TOY_CONFIG
from signal_probe_hook import SignalProbeHook  # noqa: F401 (registers it)
from toy_runner import short_toy_options, toy_config

from mmseg_dupl.engine.hooks import PREEMPTED_EXIT_CODE, TrainingPreempted
from mmseg_dupl.engine.runners import build_runner

MAX_ITERS = 4  # seg labels from 1, GMM filter from 3
SIGNAL_AT = 1  # 0-based: the signal arrives during the 2nd iteration


pytestmark = pytest.mark.usefixtures('one_torch_thread')


def _config(work_dir: str, data_root: str, resume: bool = False,
            signal_name: str = None, interval: int = MAX_ITERS):
    options = short_toy_options(data_root, MAX_ITERS) + [
        f'default_hooks.checkpoint.interval={interval}'
    ]
    cfg = toy_config(work_dir, options, resume)
    if signal_name:
        cfg.custom_hooks = list(cfg.get('custom_hooks', [])) + [
            dict(type='SignalProbeHook', at_iter=SIGNAL_AT,
                 signal_name=signal_name)
        ]
    return cfg


def _tensors(path: str) -> dict:
    """Every tensor of a checkpoint: weights and optimizer state."""
    ckpt = torch.load(path, map_location='cpu')
    found = {f'state_dict.{k}': v for k, v in ckpt['state_dict'].items()}
    for pid, state in ckpt['optimizer']['state'].items():
        for name, value in state.items():
            if torch.is_tensor(value):
                found[f'optimizer.{pid}.{name}'] = value
    return found


@pytest.fixture(scope='module')
def straight_run(toy_data_root, tmp_path_factory) -> str:
    work_dir = str(tmp_path_factory.mktemp('straight'))
    build_runner(_config(work_dir, toy_data_root)).train()
    return osp.join(work_dir, f'iter_{MAX_ITERS}.pth')


def test_sigterm_saves_then_resume_is_bit_identical(straight_run,
                                                    toy_data_root, tmp_path):
    work_dir = str(tmp_path)
    runner = build_runner(_config(work_dir, toy_data_root,
                                  signal_name='SIGTERM'))
    handler = signal.getsignal(signal.SIGTERM)
    with pytest.raises(TrainingPreempted) as stop:
        runner.train()
    assert stop.value.code == PREEMPTED_EXIT_CODE
    assert stop.value.signal_name == 'SIGTERM'
    saved = osp.join(work_dir, f'iter_{SIGNAL_AT + 1}.pth')
    assert stop.value.checkpoint == saved
    assert osp.isfile(saved)
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        assert f.read().strip() == saved
    # the handlers are the previous ones again once training stopped
    assert signal.getsignal(signal.SIGTERM) == handler
    assert not any(n.endswith('.tmp') for n in os.listdir(work_dir))

    resumed = build_runner(_config(work_dir, toy_data_root, resume=True))
    resumed.train()
    a = _tensors(straight_run)
    b = _tensors(osp.join(work_dir, f'iter_{MAX_ITERS}.pth'))
    assert a.keys() == b.keys() and len(a) > 100
    differ = [k for k in a if not torch.equal(a[k], b[k])]
    assert differ == [], f'{len(differ)} of {len(a)} tensors differ'


def test_signal_during_the_saving_iteration_saves_once(toy_data_root,
                                                       tmp_path):
    # SIGUSR1 (SLURM's --signal) in iteration 2, whose checkpoint the
    # interval saves anyway: the stop reuses it.
    cfg = _config(str(tmp_path), toy_data_root, signal_name='SIGUSR1',
                  interval=2)
    saves = []
    runner = build_runner(cfg)
    hook = next(h for h in runner.hooks
                if type(h).__name__ == 'DurableCheckpointHook')
    real = hook._save_checkpoint_with_step
    hook._save_checkpoint_with_step = lambda r, step, meta: (
        saves.append(step), real(r, step, meta))
    with pytest.raises(TrainingPreempted) as stop:
        runner.train()
    assert stop.value.signal_name == 'SIGUSR1'
    assert saves == [2]
    assert stop.value.checkpoint == osp.join(str(tmp_path), 'iter_2.pth')


def test_checked_runner_adds_the_hook_unless_turned_off(toy_data_root,
                                                       tmp_path):
    runner = build_runner(_config(str(tmp_path / 'a'), toy_data_root))
    assert [type(h).__name__ for h in runner.hooks].count(
        'PreemptionHook') == 1
    cfg = _config(str(tmp_path / 'b'), toy_data_root)
    cfg.default_hooks.preemption = None
    runner = build_runner(cfg)
    assert 'PreemptionHook' not in [type(h).__name__ for h in runner.hooks]


def test_sigterm_from_outside(toy_data_root, tmp_path):
    work_dir = str(tmp_path / 'run')
    options = short_toy_options(toy_data_root, 40)
    cmd = [sys.executable, osp.join(REPO, 'tools', 'train.py'), TOY_CONFIG,
           '--work-dir', work_dir, '--cfg-options'] + options
    proc = subprocess.Popen(
        cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
        env=dict(os.environ, PYTHONUNBUFFERED='1', OMP_NUM_THREADS='1'))
    lines = []
    deadline = time.time() + 300
    for line in proc.stdout:
        lines.append(line)
        if 'Iter(train) [' in line and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            break
        assert time.time() < deadline, 'no training iteration in 5 minutes'
    lines += proc.stdout.readlines()
    proc.wait(timeout=120)
    log = ''.join(lines)
    assert proc.returncode == PREEMPTED_EXIT_CODE, log[-3000:]
    match = re.search(
        r'Preempted by SIGTERM during iteration (\d+): saved (\S+);', log)
    assert match, log[-3000:]
    step, path = int(match.group(1)), match.group(2)
    assert step < 40
    assert path == osp.join(work_dir, f'iter_{step}.pth')
    assert osp.isfile(path)
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        assert f.read().strip() == path
    assert 'Traceback' not in log
