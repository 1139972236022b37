# Copyright (c) OpenMMLab. All rights reserved.
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmseg_dupl.utils.homography import (hflip_matrix, scale_matrix,
                                         translation_matrix,
                                         warp_by_homography)


def _labels(b=2, h=5, w=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 21, (b, h, w), generator=g)


def test_matrix_helpers():
    np.testing.assert_array_equal(
        hflip_matrix(8), [[-1, 0, 8], [0, 1, 0], [0, 0, 1]])
    np.testing.assert_array_equal(
        scale_matrix(0.75), [[0.75, 0, 0], [0, 0.75, 0], [0, 0, 1]])
    np.testing.assert_array_equal(
        scale_matrix((2, 3)), [[2, 0, 0], [0, 3, 0], [0, 0, 1]])
    np.testing.assert_array_equal(
        translation_matrix(2, -1), [[1, 0, 2], [0, 1, -1], [0, 0, 1]])
    for m in (hflip_matrix(8), scale_matrix(0.5), translation_matrix(1, 1)):
        assert m.dtype == np.float32 and m.shape == (3, 3)
    # the pixel centre 0.5 of an 8-wide image flips to the centre 7.5
    np.testing.assert_allclose(hflip_matrix(8) @ [0.5, 0.5, 1],
                               [7.5, 0.5, 1])


def test_identity():
    x = torch.randn(2, 3, 5, 7)
    out = warp_by_homography(x, np.eye(3), (5, 7))
    torch.testing.assert_close(out, x, atol=1e-5, rtol=0)
    lab = _labels()
    out = warp_by_homography(lab, torch.eye(3), (5, 7), mode='nearest',
                             padding='fill')
    assert out.dtype == lab.dtype
    assert torch.equal(out, lab)


def test_flip_is_exact_torch_flip():
    lab = _labels()
    out = warp_by_homography(lab, hflip_matrix(7), (5, 7), mode='nearest',
                             padding='fill')
    assert torch.equal(out, torch.flip(lab, [2]))
    x = torch.randn(2, 4, 5, 7)
    out = warp_by_homography(x, hflip_matrix(7), (5, 7))
    torch.testing.assert_close(out, torch.flip(x, [3]), atol=1e-5, rtol=0)


def test_2x_scale_equals_interpolate_nearest():
    lab = _labels(h=4, w=6)
    out = warp_by_homography(lab, scale_matrix(2), (8, 12), mode='nearest',
                             padding='fill')
    ref = F.interpolate(lab[:, None].float(), scale_factor=2,
                        mode='nearest')[:, 0].long()
    assert torch.equal(out, ref)


def test_2x_scale_bilinear_hand_computed():
    # 1x2 row [0, 4] upsampled to 4 columns: centres 0.5, 1.5, 2.5, 3.5 map
    # to source x = 0.25, 0.75, 1.25, 1.75 -> indices -0.25 (border), 0.25,
    # 0.75, 1.25 (border) -> values 0, 1, 3, 4
    x = torch.tensor([[[[0., 4.]]]])
    out = warp_by_homography(x, scale_matrix(2), (2, 4))
    torch.testing.assert_close(out[0, 0, 0], torch.tensor([0., 1., 3., 4.]))
    ref = F.interpolate(x, scale_factor=2, mode='bilinear',
                        align_corners=False)
    torch.testing.assert_close(out, ref)


def test_translation_fills_ignore():
    lab = _labels(b=1, h=4, w=5)
    out = warp_by_homography(lab, translation_matrix(2, 1), (4, 5),
                             mode='nearest', padding='fill', fill=255)
    assert (out[:, :1, :] == 255).all() and (out[:, :, :2] == 255).all()
    assert torch.equal(out[:, 1:, 2:], lab[:, :-1, :-2])
    # border padding repeats the edge instead
    out = warp_by_homography(lab, translation_matrix(2, 1), (4, 5),
                             mode='nearest', padding='border')
    assert torch.equal(out[:, 1:, 2:], lab[:, :-1, :-2])
    assert torch.equal(out[:, 0, 2:], lab[:, 0, :-2])


def test_fill_for_float_maps():
    x = torch.ones(1, 2, 3, 3)
    out = warp_by_homography(x, translation_matrix(-1, 0), (3, 3),
                             padding='fill', fill=-7.)
    assert (out[..., 2] == -7.).all() and (out[..., :2] == 1.).all()


def test_half_precision_keeps_coordinates_exact():
    x = torch.randn(1, 2, 5, 300).to(torch.bfloat16)
    out = warp_by_homography(x, hflip_matrix(300), (5, 300))
    assert out.dtype == torch.bfloat16
    # a bfloat16 grid would be off by whole pixels (errors of order 1)
    torch.testing.assert_close(out.float(), torch.flip(x, [3]).float(),
                               atol=2e-2, rtol=1e-2)


def test_batched_matrices():
    lab = _labels(b=2)
    H = torch.stack([torch.eye(3), torch.from_numpy(hflip_matrix(7))])
    out = warp_by_homography(lab, H, (5, 7), mode='nearest')
    assert torch.equal(out[0], lab[0])
    assert torch.equal(out[1], torch.flip(lab[1], [1]))


def test_frame_sizes_rescale_to_grids():
    # a 3x4 label grid of a 6x8 image, flipped, read out at the 6x8 frame:
    # equals nearest 2x upsampling of the flipped grid
    lab = _labels(b=1, h=3, w=4)
    out = warp_by_homography(lab, hflip_matrix(8), (6, 8),
                             src_frame_hw=(6, 8), mode='nearest')
    ref = F.interpolate(torch.flip(lab, [2])[:, None].float(), size=(6, 8),
                        mode='nearest')[:, 0].long()
    assert torch.equal(out, ref)
    # and the destination may be a coarse grid of its frame
    out = warp_by_homography(lab, hflip_matrix(8), (3, 4),
                             src_frame_hw=(6, 8), dst_frame_hw=(6, 8),
                             mode='nearest')
    assert torch.equal(out, torch.flip(lab, [2]))


def test_dupl_strong_logits_back_to_weak_view():
    """algorithm.md §5: upsample(flip_w(S_strong), 448) == warp with inv(H)."""
    torch.manual_seed(0)
    s = torch.randn(2, 3, 21, 21)
    # weak (448) -> strong (336): flip, then x0.75
    H = scale_matrix(0.75).astype(np.float64) @ hflip_matrix(448)
    out = warp_by_homography(s, np.linalg.inv(H), (448, 448),
                             src_frame_hw=(336, 336), mode='bilinear',
                             padding='border')
    ref = F.interpolate(torch.flip(s, [3]), (448, 448), mode='bilinear',
                        align_corners=False)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)


def test_weak_labels_into_strong_view():
    # flip + x(1/3) of a 6x6 map: strong centre (j + .5) comes from weak
    # x = 6 - 3 * (j + .5) = 4.5 - 3j, i.e. column 4 - 3j, and from weak
    # y = 3 * (i + .5), i.e. row 3i + 1
    lab = _labels(b=1, h=6, w=6)
    H = scale_matrix(1 / 3) @ hflip_matrix(6)
    out = warp_by_homography(lab, H, (2, 2), mode='nearest', padding='fill')
    assert torch.equal(out[0], lab[0][[1, 4]][:, [4, 1]])


@pytest.mark.parametrize('kwargs, match', [
    (dict(mode='bicubic'), 'mode'),
    (dict(padding='zeros'), 'padding'),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        warp_by_homography(torch.zeros(1, 1, 2, 2), np.eye(3), (2, 2),
                           **kwargs)


def test_bad_shapes():
    with pytest.raises(ValueError, match='H must be'):
        warp_by_homography(torch.zeros(2, 1, 2, 2), torch.eye(3)[None],
                           (2, 2))
    with pytest.raises(ValueError, match='x must be'):
        warp_by_homography(torch.zeros(2, 2), np.eye(3), (2, 2))
    with pytest.raises(ValueError, match='bilinear'):
        warp_by_homography(torch.zeros(1, 2, 2, dtype=torch.long),
                           np.eye(3), (2, 2))
