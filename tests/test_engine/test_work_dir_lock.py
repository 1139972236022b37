# Copyright (c) OpenMMLab. All rights reserved.
"""One owner per work dir (issue 23, item 2): a second run into a locked
work dir is refused with the owner's pid before it writes anything; the
lock goes with its owner however it ends; temporary files are per
process."""
import multiprocessing
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import pytest
from conftest import REPO, TOY_CONFIG
from toy_runner import short_toy_options, toy_config

from mmseg_dupl.engine.runners import (WorkDirLock, WorkDirLockedError,
                                       build_runner)
from mmseg_dupl.engine.runners import work_dir_lock
from mmseg_dupl.engine.runners.work_dir_lock import LOCK_NAME
from mmseg_dupl.utils import durable_io

# A process that owns a work dir until it is killed. The module is loaded
# from its file (it needs only the standard library): importing the
# package would take seconds per process.
HOLDER = ('import importlib.util, sys, time\n'
          'spec = importlib.util.spec_from_file_location("l", sys.argv[2])\n'
          'lock = importlib.util.module_from_spec(spec)\n'
          'spec.loader.exec_module(lock)\n'
          'lock.WorkDirLock(sys.argv[1]).acquire()\n'
          'print("locked", flush=True)\n'
          'time.sleep(120)\n')
LOCK_MODULE = work_dir_lock.__file__


def _holder_cmd(work_dir: str) -> list:
    return [sys.executable, '-c', HOLDER, work_dir, LOCK_MODULE]


def _hold(work_dir: str) -> subprocess.Popen:
    proc = subprocess.Popen(_holder_cmd(work_dir), cwd=REPO,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == 'locked'
    return proc


def _kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_second_owner_is_refused_with_the_pid(tmp_path):
    holder = _hold(str(tmp_path))
    try:
        with pytest.raises(WorkDirLockedError,
                           match=rf'pid {holder.pid} on .*-c'):
            WorkDirLock(str(tmp_path)).acquire()
    finally:
        _kill(holder)
    # released by the kernel although the owner was SIGKILLed
    lock = WorkDirLock(str(tmp_path))
    assert lock.acquire()
    with open(osp.join(str(tmp_path), LOCK_NAME)) as f:
        assert f.read().startswith(f'pid {os.getpid()} on ')
    lock.release()


def test_same_process_shares_the_lock(tmp_path):
    first, second = WorkDirLock(str(tmp_path)), WorkDirLock(str(tmp_path))
    assert first.acquire() and second.acquire()
    first.release()
    # still held for the second holder: another process is refused
    proc = subprocess.run(_holder_cmd(str(tmp_path)), cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and 'WorkDirLockedError' in proc.stderr
    assert f'pid {os.getpid()}' in proc.stderr
    second.release()
    holder = _hold(str(tmp_path))  # now free
    _kill(holder)


def _sleep() -> None:
    time.sleep(60)


def test_forked_children_do_not_keep_the_lock(tmp_path):
    # DataLoader workers are forked while the lock is held; when the owner
    # ends, a worker still alive must not keep the work dir locked.
    lock = WorkDirLock(str(tmp_path))
    lock.acquire()
    child = multiprocessing.get_context('fork').Process(target=_sleep)
    child.start()
    try:
        lock.release()
        holder = _hold(str(tmp_path))
        _kill(holder)
    finally:
        child.kill()
        child.join()


def test_runner_refused_before_writing(toy_data_root, tmp_path):
    work_dir = str(tmp_path / 'run')
    holder = _hold(work_dir)
    try:
        cfg = toy_config(work_dir, short_toy_options(toy_data_root, 4))
        with pytest.raises(WorkDirLockedError, match=f'pid {holder.pid}'):
            build_runner(cfg)
        assert os.listdir(work_dir) == [LOCK_NAME]
    finally:
        _kill(holder)


def test_train_py_refused_while_another_run_owns_the_work_dir(
        toy_data_root, tmp_path):
    work_dir = str(tmp_path / 'run')
    holder = _hold(work_dir)
    try:
        proc = subprocess.run(
            [sys.executable, osp.join(REPO, 'tools', 'train.py'), TOY_CONFIG,
             '--work-dir', work_dir, '--cfg-options'] +
            short_toy_options(toy_data_root, 4),
            cwd=REPO, capture_output=True, text=True, timeout=300,
            env=dict(os.environ, OMP_NUM_THREADS='1'))
        assert proc.returncode != 0
        assert 'WorkDirLockedError' in proc.stderr
        assert f'is in use by another run (pid {holder.pid} on ' in \
            proc.stderr
        # refused before writing: no log folder, no config dump
        assert os.listdir(work_dir) == [LOCK_NAME]
    finally:
        _kill(holder)


def test_temporary_files_are_per_process(tmp_path):
    path = str(tmp_path / 'iter_8.pth')
    assert durable_io.tmp_path_for(path) == f'{path}.{os.getpid()}.tmp'
    other = subprocess.run(
        [sys.executable, '-c',
         'import importlib.util, sys; '
         's = importlib.util.spec_from_file_location("io", sys.argv[1]); '
         'm = importlib.util.module_from_spec(s); s.loader.exec_module(m); '
         'print(m.tmp_path_for(sys.argv[2]))', durable_io.__file__, path],
        cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
    assert other != durable_io.tmp_path_for(path)
    durable_io.write_text_durably(str(tmp_path / 'pointer'), 'x')
    assert sorted(os.listdir(tmp_path)) == ['pointer']
