# Copyright (c) OpenMMLab. All rights reserved.
"""benchmarks/bench_config_text.py runs, checks that the cached texts are
yapf's and writes its section."""
import os.path as osp
import sys

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(REPO, 'benchmarks'))

import bench_config_text as bench  # noqa: E402


def test_short_run_prints_a_row_per_length(capsys):
    bench.main(['--lengths', '30', '40', '--reads', '2', '--no-write'])
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith('| ')]
    assert [r.split(' | ')[0] for r in rows[1:]] == ['| 30', '| 40']
    assert 'identical' in out


def test_a_config_with_the_asked_root_length():
    cfg = bench.config_with_root(70)
    assert {len(cfg[k].dataset.data_root) for k in bench.LOADERS} == {70}
