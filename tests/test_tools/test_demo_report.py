# Copyright (c) OpenMMLab. All rights reserved.
"""tools/demo_report.py: the report's tables with the reference row."""
import json
import os.path as osp
import sys

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(REPO, 'tools'))

from demo_report import (benchmark_lead, metrics_table,  # noqa: E402
                         monitor_summary, per_class_table, plot_monitor)


def _runs():
    iou = dict(mIoU=50., IoU=[90., 10.])
    return dict(
        dupl=dict(seconds=120, metrics=dict(
            seg_s1=iou, seg_s2=iou, seg_ensemble=iou, cam_train=iou,
            pseudo_train=iou)),
        fully_supervised=dict(seconds=30, metrics=dict(
            seg_s1=dict(mIoU=60., IoU=[95., 25.]))))


def test_reference_row_has_seg_only():
    rows = metrics_table(_runs()).splitlines()
    assert rows[-1] == ('| fully supervised reference (GT masks, not WSSS) '
                        '| 60.0 | – | – | – | – | 0.5 min |')


def test_per_class_table_names_the_reference_column():
    table = per_class_table(_runs(), ['background', 'aeroplane'])
    head, _, first, second = table.splitlines()
    assert head.endswith('| fully supervised seg s1 |')
    assert first.endswith('| 95.0 |') and second.endswith('| 25.0 |')


def test_benchmark_lead_adds_the_reference_sentence(tmp_path):
    path = tmp_path / 'summary.json'
    path.write_text(json.dumps(dict(lead_sentence='Lead.',
                                    reference_sentence='Reference.')))
    assert benchmark_lead(str(path)) == 'Lead. Reference.'
    path.write_text(json.dumps(dict(lead_sentence='Lead.')))
    assert benchmark_lead(str(path)) == 'Lead.'


def test_monitor_summary_gives_best_final_and_cost(tmp_path):
    curves = {'dupl s1': dict(cam_mIoU=((0, 30, 60), (20., 64., 61.)),
                              pseudo_mIoU=((0, 30, 60), (10., 80., 75.5)))}
    runs = dict(dupl=dict(seconds=200., monitor_seconds=9.),
                baseline=dict(seconds=100., monitor_seconds=None))
    text = monitor_summary(runs, curves)
    assert '| dupl s1 | 64.0 | 61.0 | 80.0 | 75.5 |' in text
    assert 'dupl 9 s of 200 s training (4.5 %)' in text
    assert 'baseline' not in text  # reused run: no cost measured
    plot_monitor(curves, str(tmp_path / 'monitor.png'))
    assert (tmp_path / 'monitor.png').stat().st_size > 1000
    assert 'No pseudo-label monitor curves' in monitor_summary(runs, {})
