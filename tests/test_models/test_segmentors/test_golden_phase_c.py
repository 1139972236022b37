# Copyright (c) OpenMMLab. All rights reserved.
"""The current code's phase-C ``loss()`` equals the golden one: every loss
term and every parameter gradient within 1e-5 relative (float rounding).

The golden file (tests/golden/golden_phase_c.pt) was made by
tests/golden_phase_c.py from the commit recorded in it (``rev``); see that
file to regenerate it or to adapt the schedule setup / term names.
"""
import os.path as osp

import pytest
import torch

import mmseg_dupl  # noqa: F401

from golden_phase_c import (GOLDEN_FILE, TERM_NAMES, batch_from_plain,
                            build_model, enter_phase_c, mismatches,
                            run_loss_and_grads)


@pytest.fixture(scope='module')
def golden():
    assert osp.exists(GOLDEN_FILE), f'golden file missing: {GOLDEN_FILE}'
    return torch.load(GOLDEN_FILE, weights_only=False)


def run(golden, state_dict=None):
    torch.set_num_threads(1)
    model = build_model(state_dict or golden['state_dict'])
    enter_phase_c(model, golden['iteration'], golden['high_thr'])
    return run_loss_and_grads(model, batch_from_plain(golden['batch']))


def test_golden_covers_phase_c(golden):
    """The golden run exercises every stage: seg and reg terms, a GMM
    filter that flags pixels in both students, per-image thresholds."""
    assert set(golden['terms']) == set(TERM_NAMES)
    # the golden terms by today's names
    terms = {TERM_NAMES[k]: v for k, v in golden['terms'].items()}
    for k in (1, 2):
        assert terms[f'noise_ratio.s{k}'] > 0
        assert terms[f's{k}.loss_seg'] > 0
        assert terms[f's{k}.loss_consistency'] > 0
    # tau_i differ between the two images (max over present classes)
    assert terms['image_threshold'] < golden['high_thr'].max()
    assert len(golden['grads']) == sum(
        p.numel() > 0 for p in build_model().parameters() if p.requires_grad)


def test_loss_and_grads_equal_golden(golden):
    assert mismatches(golden, *run(golden)) == []


def test_comparison_catches_a_small_change(golden):
    """A 1e-3 change of one classifier weight is reported."""
    state = {k: v.clone() for k, v in golden['state_dict'].items()}
    state['student1.classifier.weight'][0, 0] += 1e-3
    found = mismatches(golden, *run(golden, state))
    assert any('s1.loss_cls' in f for f in found)
    assert any(f.startswith('grad of student1.') for f in found)
