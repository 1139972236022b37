# Copyright (c) OpenMMLab. All rights reserved.
"""A run killed with SIGKILL and resumed with --resume ends with the same
weights as an uninterrupted run (safe checkpoint loading left on)."""
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import torch
from conftest import REPO, TOY_CONFIG, toy_train_options

import mmseg_dupl  # noqa: F401  (allow-lists mmengine's checkpoint types)

MAX_ITERS = 8  # a checkpoint at 4, the GMM filter from 5


def _cmd(work_dir: str, data_root: str, resume: bool = False) -> list:
    options = toy_train_options(
        data_root, max_iters=MAX_ITERS, cam=2, gmm=5)
    options = [o for o in options if not o.startswith((
        'default_hooks.checkpoint.interval', 'train_cfg.val_interval'))]
    options += [
        'default_hooks.checkpoint.interval=4',
        # keep iter_4.pth after iter_8.pth: the test compares against it
        'default_hooks.checkpoint.max_keep_ckpts=2',
        'train_cfg.val_interval=1000',
        'train_cfg.val_begin=1000',  # no validation at the last iteration
        'randomness.deterministic=True'
    ]
    cmd = [sys.executable, osp.join(REPO, 'tools', 'train.py'), TOY_CONFIG,
           '--work-dir', work_dir]
    if resume:
        cmd.append('--resume')
    return cmd + ['--cfg-options'] + options


def _weights(path: str) -> dict:
    # torch.load's default weights_only=True stays on: the allow-list
    # installed by importing mmseg_dupl is what makes this load work.
    return torch.load(path, map_location='cpu')['state_dict']


def test_sigkill_then_resume_matches_uninterrupted_run(toy_data_root,
                                                       tmp_path):
    env = dict(os.environ, PYTHONHASHSEED='0')
    straight = str(tmp_path / 'straight')
    subprocess.run(_cmd(straight, toy_data_root), cwd=REPO, env=env,
                   check=True, capture_output=True, timeout=600)

    killed = str(tmp_path / 'killed')
    proc = subprocess.Popen(
        _cmd(killed, toy_data_root), cwd=REPO, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    marker = osp.join(killed, 'last_checkpoint')
    deadline = time.time() + 600
    while not osp.exists(marker) and proc.poll() is None:
        assert time.time() < deadline, 'no checkpoint within 10 minutes'
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, 'the run ended before the kill'
    assert not osp.exists(osp.join(killed, f'iter_{MAX_ITERS}.pth'))

    resumed = subprocess.run(
        _cmd(killed, toy_data_root, resume=True), cwd=REPO, env=env,
        capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert 'resumed' in (resumed.stdout + resumed.stderr).lower()

    a = _weights(osp.join(straight, f'iter_{MAX_ITERS}.pth'))
    b = _weights(osp.join(killed, f'iter_{MAX_ITERS}.pth'))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-6, rtol=1e-5), key
    # the weights moved: the comparison is not between two initialisations
    init = _weights(osp.join(killed, 'iter_4.pth'))
    assert any(not torch.equal(init[k], a[k]) for k in a)
