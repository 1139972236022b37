# Copyright (c) OpenMMLab. All rights reserved.
"""tools/train.py on the toy config crosses all three DuPL phases."""
import glob
import json
import os.path as osp
import re

import pytest

PHASE_KEYS = {
    'A': ['s1.loss_cls', 's2.loss_cls', 's1.loss_ptc', 's2.loss_ptc',
          'loss_disc'],
    'B': ['s1.loss_seg', 's2.loss_seg'],
    'C': ['s1.loss_consistency', 's2.loss_consistency'],
}
# GMMNoiseFilterHook's statistics, per student, from phases.gmm on
GMM_STATS = [f'gmm.s{k}.{stat}' for k in (1, 2) for stat in (
    'removed', 'mean_gap', 'skipped_pixels', 'skipped_gap')]
TOY_CLASSES = ('aeroplane', 'bicycle', 'bird', 'boat', 'bottle')


def _log_rows(log: str) -> dict:
    """``{iter: {key: value}}`` from mmengine's training log lines."""
    rows = {}
    for line in log.splitlines():
        m = re.search(r'Iter\(train\) \[\s*(\d+)/\d+\](.*)', line)
        if m:
            pairs = re.findall(r'(\S+): (\S+)', m.group(2))
            rows[int(m.group(1))] = {k: v for k, v in pairs}
    return rows


def test_train_crosses_all_phases_with_finite_logged_losses(toy_checkpoint):
    rows = _log_rows(toy_checkpoint['log'])
    assert osp.isfile(toy_checkpoint['checkpoint'])
    # logged at iterations 5 (phase A), 15/20 (B), 30/35/40 (C)
    assert set(PHASE_KEYS['A']) <= set(rows[5])
    assert not set(PHASE_KEYS['B']) & set(rows[5])
    assert set(PHASE_KEYS['B']) <= set(rows[20])
    assert not set(PHASE_KEYS['C']) & set(rows[20])
    assert set(PHASE_KEYS['C']) <= set(rows[40])
    assert set(GMM_STATS) <= set(rows[30]) and set(GMM_STATS) <= set(rows[40])
    assert not set(GMM_STATS) & set(rows[20])
    for k in (1, 2):
        assert 0 <= float(rows[40][f'gmm.s{k}.removed']) <= 1
    for row in rows.values():
        for key, value in row.items():
            if 'loss' in key:
                assert value not in ('nan', 'inf'), (key, value)
                assert float(value) == pytest.approx(float(value))
    # CosineThresholdHook logged tau_c per class: 0.7 before the descent
    # (phases.cam = 10), the end value at the end
    for name in TOY_CLASSES:
        assert float(rows[5][f'tau_c.{name}']) == pytest.approx(0.7)
        assert float(rows[40][f'tau_c.{name}']) == pytest.approx(
            0.55, abs=1e-3)
    assert float(rows[40]['image_threshold']) == pytest.approx(
        0.55, abs=1e-3)
    assert 'mIoU' in toy_checkpoint['log']


# The reference's validation scores (DualStudentMetric), per student
STUDENT_SCORES = [f's{k}.{name}' for k in (1, 2) for name in (
    'seg_mIoU', 'cam_mIoU', 'cam_aux_mIoU', 'cls_F1')]


def test_validation_logs_every_students_scores(toy_checkpoint):
    lines = [line for line in toy_checkpoint['log'].splitlines()
             if re.search(r'Iter\(val\) \[\d+/\d+\]\s+aAcc', line)]
    assert len(lines) == 1, lines
    logged = dict(re.findall(r'(\S+): (\S+)', lines[0]))
    for key in STUDENT_SCORES + ['mIoU']:
        assert 0 <= float(logged[key]) <= 100, (key, logged)
    # the main prediction is student 1's segmentation (test_cfg.student)
    assert float(logged['s1.seg_mIoU']) == float(logged['mIoU'])
    # every visualizer backend gets them: the LocalVisBackend's scalars
    scalars = glob.glob(osp.join(toy_checkpoint['work_dir'], '*',
                                 'vis_data', 'scalars.json'))
    assert len(scalars) == 1, scalars
    with open(scalars[0]) as f:
        rows = [json.loads(line) for line in f]
    val = [r for r in rows if 's1.cam_mIoU' in r]
    assert len(val) == 1 and val[0]['step'] == 40
    assert set(STUDENT_SCORES) <= set(val[0])
