# Copyright (c) OpenMMLab. All rights reserved.
"""tools/slurm_train.sh asks Slurm for SIGUSR1 before the time limit and
requeues a preempted run (exit status 75) when told to (issue 23, item 1).
``srun`` and ``scontrol`` are stand-ins that record their arguments."""
import os
import os.path as osp
import subprocess

import pytest
from conftest import REPO

from mmseg_dupl.engine.hooks import PREEMPTED_EXIT_CODE

STUB = '#!/usr/bin/env bash\necho "$(basename "$0") $*" >> "{log}"\n{tail}\n'


def _run(tmp_path, srun_status: int, **env) -> tuple:
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    log = tmp_path / 'calls.txt'
    for name, tail in (('srun', f'exit {srun_status}'), ('scontrol', '')):
        path = bin_dir / name
        path.write_text(STUB.format(log=log, tail=tail))
        path.chmod(0o755)
    env = dict({k: v
                for k, v in os.environ.items() if not k.startswith('SLURM_')},
               PATH=f'{bin_dir}{os.pathsep}{os.environ["PATH"]}', **env)
    proc = subprocess.run(
        ['bash', osp.join(REPO, 'tools', 'slurm_train.sh'), 'part', 'job',
         'configs/dupl_vit-b_voc.py', '--resume'],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    calls = log.read_text().splitlines() if log.exists() else []
    return proc.returncode, calls


def test_srun_asks_for_the_signal(tmp_path):
    status, calls = _run(tmp_path, 0)
    assert status == 0
    assert len(calls) == 1 and calls[0].startswith('srun ')
    assert ' --signal=USR1@120 ' in calls[0]
    assert calls[0].endswith('--launcher=slurm --resume')


@pytest.mark.parametrize('requeue', ['1', '0'])
def test_preempted_run_is_requeued_when_asked(tmp_path, requeue):
    status, calls = _run(tmp_path, PREEMPTED_EXIT_CODE, REQUEUE=requeue,
                         SLURM_JOB_ID='4242', SIGNAL_TIME='300')
    assert status == PREEMPTED_EXIT_CODE
    assert ' --signal=USR1@300 ' in calls[0]
    assert calls[1:] == (['scontrol requeue 4242'] if requeue == '1' else [])


def test_failed_run_is_not_requeued(tmp_path):
    status, calls = _run(tmp_path, 1, REQUEUE='1', SLURM_JOB_ID='4242')
    assert status == 1
    assert [c.split()[0] for c in calls] == ['srun']
