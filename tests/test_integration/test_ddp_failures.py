# Copyright (c) OpenMMLab. All rights reserved.
"""Two gloo ranks on the CPU: a signal to one rank stops both after the
same iteration with one checkpoint (issue 23, item 1), and a frozen rank
ends the job within env_cfg.dist_cfg.timeout plus a margin, naming that
rank (item 4).

The frozen-rank run starts the two ranks itself (the environment torchrun
gives them): torchrun adds its own shutdown wait (30 s) before it
SIGKILLs a stopped worker, which would make this test take minutes."""
import os
import os.path as osp
import re
import signal
import subprocess
import sys
import time

from conftest import REPO, TOY_CONFIG
from mmengine.config import Config
from stock_config_utils import free_port
from toy_runner import short_toy_options

from mmseg_dupl.engine.hooks import PREEMPTED_EXIT_CODE

TESTS_DIR = osp.dirname(osp.dirname(osp.abspath(__file__)))
TIMEOUT_S = 4  # env_cfg.dist_cfg.timeout of these runs
MARGIN_S = 30  # the report wait (2 s) and a loaded 2-core host


def _write_config(tmp_path, probe: dict) -> str:
    """The toy config plus a SignalProbeHook, without validation."""
    hooks = [dict(h) for h in Config.fromfile(TOY_CONFIG).get(
        'custom_hooks', [])]
    hooks.append(dict(type='SignalProbeHook', **probe))
    path = tmp_path / 'dupl_signal_probe.py'
    path.write_text(
        f'_base_ = [{TOY_CONFIG!r}]\n'
        'custom_imports = dict(imports=["mmseg_dupl", "mmpretrain.models", '
        '"signal_probe_hook"], allow_failed_imports=False)\n'
        f'custom_hooks = {hooks!r}\n'
        'val_cfg = None\nval_dataloader = None\nval_evaluator = None\n')
    return str(path)


def _options(data_root: str, max_iters: int) -> list:
    return [
        o for o in short_toy_options(data_root, max_iters)
        if not o.startswith(('val_dataloader', 'train_cfg.val_interval'))
    ] + [f'env_cfg.dist_cfg.timeout={TIMEOUT_S}']


def _env(**extra) -> dict:
    return dict(
        os.environ,
        PYTHON=sys.executable,
        OMP_NUM_THREADS='1',
        PYTHONUNBUFFERED='1',
        PYTHONPATH=os.pathsep.join(
            [TESTS_DIR, REPO, os.environ.get('PYTHONPATH', '')]),
        **extra)


def test_signal_to_one_rank_stops_both_after_one_save(toy_data_root,
                                                      tmp_path):
    work_dir = str(tmp_path / 'work')
    config = _write_config(
        tmp_path, dict(at_iter=2, signal_name='SIGUSR1', rank=1))
    cmd = ['bash', osp.join(REPO, 'tools', 'dist_train.sh'), config, '2',
           '--work-dir', work_dir, '--cfg-options'
           ] + _options(toy_data_root, 12)
    proc = subprocess.run(cmd, cwd=REPO, env=_env(PORT=str(free_port())),
                          capture_output=True, text=True, timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode != 0, log[-3000:]
    # both ranks took the preemption exit (rank 0 got no signal itself)
    codes = re.findall(r'rank\s*: (\d) \(local_rank: \d\)\s+exitcode\s*: '
                       r'(-?\d+)', log)
    assert sorted(codes) == [('0', str(PREEMPTED_EXIT_CODE)),
                             ('1', str(PREEMPTED_EXIT_CODE))], log[-3000:]
    assert 'Preempted by SIGUSR1 during iteration 3: saved ' in log
    assert osp.isfile(osp.join(work_dir, 'iter_3.pth'))
    assert not osp.exists(osp.join(work_dir, 'iter_4.pth'))
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        assert f.read().strip() == osp.join(work_dir, 'iter_3.pth')


def test_frozen_rank_ends_the_job_naming_it(toy_data_root, tmp_path):
    work_dir = str(tmp_path / 'work')
    marker = str(tmp_path / 'frozen')
    config = _write_config(
        tmp_path,
        dict(at_iter=1, signal_name='SIGSTOP', rank=1, marker=marker))
    port = str(free_port())
    procs = []
    for rank in (0, 1):
        env = _env(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE='2',
                   MASTER_ADDR='127.0.0.1', MASTER_PORT=port)
        procs.append(subprocess.Popen(
            [sys.executable, osp.join(REPO, 'tools', 'train.py'), config,
             '--launcher', 'pytorch', '--work-dir', work_dir,
             '--cfg-options'] + _options(toy_data_root, 12),
            cwd=REPO, env=env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True))
    try:
        deadline = time.time() + 300
        while not osp.exists(marker):
            assert time.time() < deadline, 'rank 1 never reached iteration 1'
            assert procs[0].poll() is None and procs[1].poll() is None
            time.sleep(0.1)
        frozen_at = time.time()
        log, _ = procs[0].communicate(timeout=TIMEOUT_S + MARGIN_S)
        took = time.time() - frozen_at
        print(f'rank 0 ended {took:.1f} s after rank 1 froze')
        assert procs[0].returncode not in (0, None), log[-3000:]
        assert took < TIMEOUT_S + MARGIN_S
        assert re.search(
            r'RankFailureError: rank 0: a collective failed at iteration 1 '
            r'\(dist_cfg\.timeout=4 s\).*Rank 1 stopped answering', log), \
            log[-3000:]
        assert procs[1].poll() is None  # still stopped: the launcher's job
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            proc.communicate()
