# Copyright (c) OpenMMLab. All rights reserved.
"""tools/train.py on the toy config crosses all three DuPL phases."""
import os.path as osp
import re

import pytest

PHASE_KEYS = {
    'A': ['s1.loss_cls', 's2.loss_cls', 's1.loss_ptc', 's2.loss_ptc',
          'loss_disc'],
    'B': ['s1.loss_seg', 's2.loss_seg'],
    'C': ['s1.loss_consistency', 's2.loss_consistency', 'noise_ratio.s1',
          'noise_ratio.s2'],
}


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
    for row in rows.values():
        for key, value in row.items():
            if 'loss' in key:
                assert value not in ('nan', 'inf'), (key, value)
                assert float(value) == pytest.approx(float(value))
    # the cosine threshold descended to the end value
    assert float(rows[40]['thr_high']) == pytest.approx(0.55, abs=1e-3)
    assert 'mIoU' in toy_checkpoint['log']
