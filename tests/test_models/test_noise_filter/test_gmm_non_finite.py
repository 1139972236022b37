# Copyright (c) OpenMMLab. All rights reserved.
"""The GMM filter's rule for non-finite per-pixel losses (issue 11): such a
pixel is neither fitted nor marked noisy, in the fast and reference paths
alike; the rest of the image is filtered as if the pixel were ignored."""
import math

import pytest
import torch

from gmm_reference import gmm_noise_mask_reference

from mmseg_dupl.models.noise_filter.gmm import gmm_noise_mask


def _bimodal(rows: int = 3, pixels: int = 4096, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(rows, pixels, generator=g) * 0.5 + 0.1
    high = torch.rand(rows, pixels, generator=g) * 0.5 + 3.0
    noisy = torch.rand(rows, pixels, generator=g) < 0.3
    labels = torch.randint(1, 4, (rows, pixels), generator=g)
    return torch.where(noisy, high, low), labels


@pytest.mark.parametrize('value', [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize('mask_fn', [gmm_noise_mask, gmm_noise_mask_reference])
def test_non_finite_pixels_act_as_ignored(value, mask_fn):
    losses, labels = _bimodal()
    bad = torch.zeros_like(labels, dtype=torch.bool)
    bad[0, ::37] = True  # ~110 pixels, noisy and clean ones
    bad[1, 5] = True  # a single one
    assert mask_fn(losses, labels)[bad].any()  # some would be noisy
    with_bad = losses.masked_fill(bad, value)
    got = mask_fn(with_bad, labels)
    expected = mask_fn(losses, labels.masked_fill(bad, 255))
    assert not got[bad].any()
    assert torch.equal(got, expected)
    # the filter stays on for those images
    assert got[0].sum() > 1000 and got[1].sum() > 1000


@pytest.mark.parametrize('value', [math.nan, math.inf, -math.inf])
def test_fast_and_reference_agree_on_non_finite(value):
    losses, labels = _bimodal(seed=1)
    losses[:, :64] = value
    losses[2] = value  # an image without any finite loss: nothing noisy
    fast = gmm_noise_mask(losses, labels)
    assert torch.equal(fast, gmm_noise_mask_reference(losses, labels))
    assert not fast[2].any() and fast[0].any()
