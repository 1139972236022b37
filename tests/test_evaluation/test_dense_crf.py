# Copyright (c) OpenMMLab. All rights reserved.
import builtins

import numpy as np
import pytest
import torch

from mmseg_dupl.evaluation import dense_crf
from mmseg_dupl.evaluation.dense_crf import softmax_np

H, W, EDGE = 48, 64, 32


def edge_case(offset=8, sharpness=6.0):
    """Two flat colours split at column EDGE, and blurry logits whose
    boundary sits ``offset`` columns to the right of it."""
    img = np.zeros((H, W, 3), np.uint8)
    img[:, :EDGE] = (200, 40, 40)
    img[:, EDGE:] = (40, 60, 200)
    cols = np.arange(W, dtype=np.float32)[None].repeat(H, 0)
    ramp = (cols - (EDGE + offset)) / sharpness
    logits = 0.5 * np.stack([-ramp, ramp])
    truth = (cols >= EDGE).astype(np.int64)
    return img, logits, truth


def boundary_error(labels):
    """Mean distance (columns) between the predicted and the colour edge."""
    return np.abs((labels == 0).sum(1) - EDGE).mean()


def test_crf_moves_the_boundary_to_the_colour_edge():
    img, logits, truth = edge_case()
    before = logits.argmax(0)
    after = dense_crf(img, torch.from_numpy(logits))
    assert boundary_error(before) >= 8
    assert boundary_error(after) < 1
    assert (after != truth).mean() < (before != truth).mean() / 4
    assert after.shape == (H, W) and after.dtype == np.int64


def test_without_bilateral_kernel_the_edge_is_not_found():
    """The colour term is what moves the boundary."""
    img, logits, _ = edge_case()
    after = dense_crf(img, logits, bi_compat=0)
    assert boundary_error(after) > 4


def test_confident_logits_on_flat_image_are_kept():
    img = np.full((20, 30, 3), 128, np.uint8)
    labels = np.random.default_rng(0).integers(0, 3, (20, 30))
    logits = 20.0 * np.eye(3, dtype=np.float32)[labels].transpose(2, 0, 1)
    assert np.array_equal(
        dense_crf(img, logits, bi_compat=0, gauss_compat=0), labels)


def test_softmax_np():
    x = np.random.default_rng(0).normal(size=(4, 5, 6)).astype(np.float32)
    np.testing.assert_allclose(
        softmax_np(x * 100),
        torch.from_numpy(x * 100).softmax(0).numpy(),
        rtol=1e-5,
        atol=1e-6)


def test_bad_inputs():
    img, logits, _ = edge_case()
    with pytest.raises(ValueError, match='uint8'):
        dense_crf(img.astype(np.float32), logits)
    with pytest.raises(ValueError, match=r'\(K, H, W\)'):
        dense_crf(img, logits[0])
    with pytest.raises(ValueError, match='differs from the image size'):
        dense_crf(img, logits[:, :10])


def test_missing_pydensecrf_says_how_to_install(monkeypatch):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name.startswith('pydensecrf'):
            raise ImportError('no pydensecrf')
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, '__import__', fake_import)
    img, logits, _ = edge_case()
    with pytest.raises(ImportError, match='pip install pydensecrf2'):
        dense_crf(img, logits)
