# Copyright (c) OpenMMLab. All rights reserved.
"""benchmarks/bench_demo_seeds.py: the summary arithmetic (the training
runs themselves are the demo's, tested in tests/test_tools)."""
import os.path as osp
import sys

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(REPO, 'benchmarks'))

from bench_demo_seeds import (lead_sentence,  # noqa: E402
                              paired_differences, plan, parse_args)


def _run(row, dataset, s1, ensemble=None):
    metrics = dict(seg_s1=dict(mIoU=s1))
    if ensemble is not None:
        metrics['seg_ensemble'] = dict(mIoU=ensemble)
    return dict(row=row, dataset=dataset, seed=dataset, metrics=metrics)


def test_paired_differences_subtract_dupl_on_the_same_pair():
    results = [
        _run('dupl', 0, 40., 42.), _run('dupl', 1, 50., 53.),
        _run('no_gmm', 0, 38., 41.), _run('no_gmm', 1, 46., 50.),
        _run('baseline', 0, 41.), _run('baseline', 1, 47.),
        _run('no_consistency', 1, 52., 54.),  # one pair only
    ]
    table = {r[0]: r[1:] for r in paired_differences(
        results, ['dupl', 'baseline', 'no_gmm', 'no_consistency'])}
    assert 'DuPL' not in table
    # no_gmm: s1 -2, -4 -> -3 ± 1.4; ensemble -1, -3 -> -2 ± 1.4
    assert table['DuPL, no GMM filter'] == [2, '-3.0 ± 1.4', '-2.0 ± 1.4']
    # the baseline's s1 against DuPL's s1 and ensemble
    assert table['single-student baseline'] == [2, '-1.0 ± 2.8',
                                                '-3.5 ± 3.5']
    assert table['DuPL, no consistency loss'] == [1, '+2.0', '+1.0']


def test_lead_sentence_says_inside_the_spread_when_it_is():
    results = [_run('dupl', 0, 40., 42.), _run('dupl', 1, 50., 53.),
               _run('baseline', 0, 41.), _run('baseline', 1, 47.)]
    text = lead_sentence(results, 4)
    assert 's1 +1.0 ± 2.8' in text and 'no lead can be claimed' in text


def test_paired_plan_runs_the_main_comparison_first():
    args = parse_args(['--rows', 'dupl', 'baseline', 'no_gmm'])
    jobs = plan(args)
    assert len(jobs) == 9
    assert {row for row, _, _ in jobs[:6]} == {'dupl', 'baseline'}
    assert all(d == s for _, d, s in jobs)
