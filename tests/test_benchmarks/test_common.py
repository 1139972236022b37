# Copyright (c) OpenMMLab. All rights reserved.
"""benchmarks/common.py's child runners: ``run_child`` (bench_train_step's
children print a JSON line) and ``run_logged`` (the training runs of the
seeds and confirmation-bias benchmarks) were once two functions of one
name, and the second silently replaced the first."""
import os.path as osp
import subprocess
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(REPO, 'benchmarks'))

import common  # noqa: E402


def test_run_child_parses_the_last_json_line():
    code = 'print("log line"); print(\'{"seconds": 1.5}\')'
    assert common.run_child(['-c', code]) == {'seconds': 1.5}
    with pytest.raises(RuntimeError, match='failed'):
        common.run_child(['-c', 'raise SystemExit(3)'])


def test_run_logged_writes_the_output_with_one_thread(tmp_path):
    log = tmp_path / 'run.log'
    code = 'import os; print(os.environ["OMP_NUM_THREADS"])'
    common.run_logged([sys.executable, '-c', code], str(log))
    assert log.read_text().strip() == '1'
    with pytest.raises(subprocess.CalledProcessError):
        common.run_logged([sys.executable, '-c', 'raise SystemExit(3)'],
                          str(log))
