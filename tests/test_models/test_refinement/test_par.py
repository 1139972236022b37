# Copyright (c) OpenMMLab. All rights reserved.
import math

import pytest
import torch
import torch.nn.functional as F

from mmseg_dupl.models.refinement.par import (PAR, _neighbor_std,
                                         dilated_neighbors,
                                         neighbor_distances, par_affinity,
                                         par_propagate, par_refine)

OFFSETS = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0),
           (1, 1)]


def _clamp(i, n):
    return min(max(i, 0), n - 1)


def _reference_par(image, probs, dilations, num_iter, w1=0.3, w2=0.01):
    """Straightforward per-pixel loops over the algorithm.md §4.2 formulas."""
    _, c, h, w = image.shape
    offs = [(d * dy, d * dx, d * (math.sqrt(2) if dy and dx else 1.0))
            for d in dilations for dy, dx in OFFSETS]
    n = len(offs)
    rho = [o[2] for o in offs]
    rho_mean = sum(rho) / n
    rho_std = math.sqrt(sum((r - rho_mean)**2 for r in rho) / (n - 1))
    p = [-(r / (rho_std + 1e-8) / w1)**2 for r in rho]
    p_soft = [math.exp(v - max(p)) for v in p]
    p_soft = [v / sum(p_soft) for v in p_soft]
    aff = {}
    for i in range(h):
        for j in range(w):
            nbr = [(_clamp(i + dy, h), _clamp(j + dx, w))
                   for dy, dx, _ in offs]
            a = [0.0] * n
            for ch in range(c):
                vals = [float(image[0, ch, y, x]) for y, x in nbr]
                mean = sum(vals) / n
                std = math.sqrt(sum((v - mean)**2 for v in vals) / (n - 1))
                centre = float(image[0, ch, i, j])
                for k, v in enumerate(vals):
                    a[k] += -(abs(v - centre) / (std + 1e-8) / w1)**2 / c
            ea = [math.exp(v - max(a)) for v in a]
            aff[i, j] = [(v / sum(ea) + w2 * q, yx)
                         for v, q, yx in zip(ea, p_soft, nbr)]
    cur = probs[0].tolist()
    for _ in range(num_iter):
        cur = [[[
            sum(wt * cur[k][y][x] for wt, (y, x) in aff[i, j])
            for j in range(w)
        ] for i in range(h)] for k in range(len(cur))]
    return torch.tensor(cur, dtype=torch.float64)[None]


def test_par_refine_matches_loop_reference_on_6x6():
    torch.manual_seed(0)
    image = torch.rand(1, 3, 6, 6, dtype=torch.float64)
    probs = torch.rand(1, 2, 6, 6, dtype=torch.float64).softmax(dim=1)
    dilations = (1, 2, 4, 8, 12, 24)  # 12 and 24 exceed the image
    out = par_refine(image, probs, dilations, num_iter=3)
    ref = _reference_par(image, probs, dilations, num_iter=3)
    torch.testing.assert_close(out, ref, rtol=1e-6, atol=1e-7)


def test_dilated_neighbors_order_and_replicate_padding():
    x = torch.arange(9.).view(1, 1, 3, 3)
    nbr = dilated_neighbors(x, (1, 2))
    assert nbr.shape == (1, 1, 16, 3, 3)
    # Centre pixel (1, 1), dilation 1: the 8 neighbours in official order.
    assert nbr[0, 0, :8, 1, 1].tolist() == [0, 1, 2, 3, 5, 6, 7, 8]
    # Dilation 2 from the centre clamps to the corners / edge middles.
    assert nbr[0, 0, 8:, 1, 1].tolist() == [0, 1, 2, 3, 5, 6, 7, 8]
    # Top-left pixel, dilation 1: replicate padding repeats the border.
    assert nbr[0, 0, :8, 0, 0].tolist() == [0, 0, 1, 0, 1, 3, 3, 4]


def test_neighbor_distances():
    dist = neighbor_distances((1, 3))
    r2 = math.sqrt(2)
    exp = [r2, 1, r2, 1, 1, r2, 1, r2]
    torch.testing.assert_close(dist, torch.tensor(exp + [3 * v for v in exp]))


def test_par_affinity_rows_sum_to_one_plus_w2():
    image = torch.rand(2, 3, 7, 5)
    aff = par_affinity(image, (1, 2), w1=0.3, w2=0.01)
    assert aff.shape == (2, 1, 16, 7, 5)
    torch.testing.assert_close(aff.sum(dim=2), torch.full((2, 1, 7, 5), 1.01))


def test_par_refine_resizes_probs_align_corners_true():
    image = torch.rand(1, 3, 7, 7)
    probs = torch.rand(1, 2, 4, 4)
    out = par_refine(image, probs, num_iter=0)
    exp = F.interpolate(
        probs, size=(7, 7), mode='bilinear', align_corners=True)
    torch.testing.assert_close(out, exp)


def test_par_on_uniform_image_keeps_constant_probs():
    # A constant image has std 0: every neighbour gets the same affinity,
    # so a constant map is only scaled by 1.01 per step.
    image = torch.full((1, 3, 5, 5), 0.5)
    probs = torch.full((1, 2, 5, 5), 0.5)
    out = par_refine(image, probs, (1, 2), num_iter=2)
    torch.testing.assert_close(out, torch.full_like(probs, 0.5 * 1.01**2))


def test_par_module_and_errors():
    module = PAR(dilations=(1, 2), num_iter=2)
    assert list(module.parameters()) == []
    assert 'num_iter=2' in repr(module)
    image, probs = torch.rand(1, 3, 6, 6), torch.rand(1, 3, 6, 6)
    torch.testing.assert_close(
        module(image, probs), par_refine(image, probs, (1, 2), 2))
    with pytest.raises(ValueError, match='dilations'):
        PAR(dilations=())
    with pytest.raises(ValueError, match='probs'):
        par_refine(image, torch.rand(2, 3, 6, 6))


def test_par_is_registered():
    from mmseg.registry import MODELS
    module = MODELS.build(dict(type='PAR', num_iter=3))
    assert isinstance(module, PAR) and module.num_iter == 3


def _stacked_propagate(probs, affinity, dilations, num_iter):
    """The earlier implementation: every neighbour map stacked, then
    weighted and summed over the neighbour dim."""
    for _ in range(num_iter):
        probs = (dilated_neighbors(probs, dilations) * affinity).sum(dim=2)
    return probs


def test_par_propagate_equals_stacked_sum():
    """Window-by-window accumulation = the stacked sum, to float rounding
    (dilation 24 > the 20x20 map: clamped borders included)."""
    torch.manual_seed(0)
    dilations = (1, 2, 4, 8, 12, 24)
    image = torch.rand(2, 3, 20, 20)
    probs = torch.rand(2, 5, 20, 20).softmax(dim=1)
    affinity = par_affinity(image, dilations)
    out = par_propagate(probs, affinity, dilations, 10)
    torch.testing.assert_close(
        out, _stacked_propagate(probs, affinity, dilations, 10),
        rtol=1e-5, atol=0)
    with pytest.raises(ValueError, match='neighbours'):
        par_propagate(probs, affinity, (1, 2), 1)


def test_dilated_neighbors_one_pad_equals_a_pad_per_dilation():
    x = torch.rand(1, 2, 9, 7)
    per_dilation = []
    for d in (1, 3, 8):
        padded = F.pad(x, [d] * 4, mode='replicate')
        per_dilation += [padded[..., d + dy * d:d + dy * d + 9,
                                d + dx * d:d + dx * d + 7]
                         for dy, dx in OFFSETS]
    assert torch.equal(dilated_neighbors(x, (1, 3, 8)),
                       torch.stack(per_dilation, dim=2))


def test_neighbor_std_matches_torch_std():
    neighbors = torch.rand(2, 3, 48, 11, 13)
    torch.testing.assert_close(
        _neighbor_std(list(neighbors.unbind(dim=2))),
        neighbors.std(dim=2), rtol=1e-6, atol=1e-7)


def _stacked_affinity(image, dilations, w1=0.3, w2=0.01):
    """The earlier (stacked, torch.std) affinity."""
    neighbors = dilated_neighbors(image, dilations)
    diff = (neighbors - image.unsqueeze(2)).abs()
    std = neighbors.std(dim=2, keepdim=True)
    aff = (-(diff / (std + 1e-8) / w1)**2).mean(dim=1, keepdim=True)
    rho = neighbor_distances(dilations).view(1, 1, -1, 1, 1)
    pos = -(rho / (rho.std(dim=2, keepdim=True) + 1e-8) / w1)**2
    return aff.softmax(dim=2) + w2 * pos.softmax(dim=2)


def test_par_affinity_equals_stacked_formula():
    torch.manual_seed(1)
    image = torch.rand(2, 3, 20, 17)
    dilations = (1, 2, 4, 8, 12, 24)
    torch.testing.assert_close(
        par_affinity(image, dilations), _stacked_affinity(image, dilations),
        rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize('num_iter', [0, 1, 2, 3])
def test_par_propagate_buffers_for_any_step_count(num_iter):
    torch.manual_seed(2)
    image = torch.rand(1, 3, 9, 8)
    probs = torch.rand(1, 3, 9, 8)
    affinity = par_affinity(image, (1, 3))
    out = par_propagate(probs, affinity, (1, 3), num_iter)
    torch.testing.assert_close(
        out, _stacked_propagate(probs, affinity, (1, 3), num_iter),
        rtol=1e-5, atol=0)
    assert out.is_contiguous()
