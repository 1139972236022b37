# Copyright (c) OpenMMLab. All rights reserved.
"""Eight training iterations across phases A -> B -> C equal the golden
trajectory (tests/golden/golden_trajectory.pt, made by
tests/golden_trajectory.py): every loss term of every iteration and the
final weights, to float rounding."""
import os.path as osp

import pytest
import torch

import mmseg_dupl  # noqa: F401

from golden_trajectory import GOLDEN_FILE, TRAIN_CFG, build_model, train


@pytest.fixture(scope='module')
def golden():
    assert osp.exists(GOLDEN_FILE), f'golden file missing: {GOLDEN_FILE}'
    return torch.load(GOLDEN_FILE, weights_only=False)


@pytest.fixture(scope='module')
def rerun(golden):
    torch.set_num_threads(1)
    model = build_model(**TRAIN_CFG)
    model.load_state_dict(golden['initial'], strict=True)
    return train(model)


def test_golden_trajectory_crosses_every_boundary(golden):
    history = golden['history']
    assert 's1.loss_seg' not in history[1]  # phase A
    assert history[2]['s1.loss_seg'] == 0.  # computed at cam, weight 0
    assert history[3]['s1.loss_seg'] > 0
    assert history[5]['s1.loss_consistency'] == 0.  # computed at gmm
    assert history[6]['s1.loss_consistency'] > 0


def test_losses_of_every_iteration_equal_golden(golden, rerun):
    history, _ = rerun
    assert len(history) == len(golden['history'])
    for n, (got, want) in enumerate(zip(history, golden['history'])):
        assert got.keys() == want.keys(), n
        for key, value in want.items():
            assert got[key] == pytest.approx(value, rel=1e-5, abs=1e-7), \
                (n, key)


def test_final_weights_equal_golden(golden, rerun):
    _, final = rerun
    assert final.keys() == golden['final'].keys()
    moved = 0
    for key, want in golden['final'].items():
        scale = float(want.abs().max()) if want.numel() else 0.
        torch.testing.assert_close(final[key], want, rtol=1e-4,
                                   atol=1e-4 * scale + 1e-7, msg=key)
        moved += not torch.equal(want, golden['initial'][key])
    assert moved > 0  # training moved the weights
