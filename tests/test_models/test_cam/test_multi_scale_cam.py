# Copyright (c) OpenMMLab. All rights reserved.
import pytest
import torch
import torch.nn.functional as F

from mmseg_dupl.models.cam.multi_scale import (autocast_cam_fn, multi_scale_cam,
                                         normalize_cam)


def test_normalize_cam_hand_values():
    cam = torch.tensor([[[[1., 3.], [2., 5.]]], [[[-2., -2.], [-2., 0.]]]])
    out = normalize_cam(cam)
    exp = torch.tensor([[[[0., 2.], [1., 4.]]], [[[0., 0.], [0., 2.]]]])
    exp = exp / torch.tensor([4., 2.]).view(2, 1, 1, 1).add(1e-5)
    torch.testing.assert_close(out, exp)
    # A constant map becomes all zeros (no division by zero).
    assert normalize_cam(torch.ones(1, 1, 2, 2)).abs().max() == 0


def _pos_bias_cam_fn(x):
    """Linear, not flip-equivariant: cam = x - 2 + [0, .., 0, 6]."""
    pos = torch.zeros(x.shape[-1])
    pos[-1] = 6.
    cam = x[:, :1] - 2 + pos
    return cam, -cam


def test_multi_scale_cam_single_scale_hand_values():
    x = torch.tensor([[0., 1., 2.], [3., 4., 5.]]).expand(1, 3, 2, 3)
    cam, cam_aux = multi_scale_cam(_pos_bias_cam_fn, x, scales=(1.0, ))
    # max(A, flip(A_flipped)) then relu, by hand.
    exp = torch.tensor([[4., 0., 6.], [7., 2., 9.]]) / (9 + 1e-5)
    exp_aux = torch.tensor([[2., 1., 0.], [0., 0., 0.]]) / (2 + 1e-5)
    torch.testing.assert_close(cam, exp.view(1, 1, 2, 3))
    torch.testing.assert_close(cam_aux, exp_aux.view(1, 1, 2, 3))


def test_multi_scale_cam_matches_manual_computation():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 4, 2, stride=2, bias=False)
    seen = []

    def cam_fn(x):
        seen.append(tuple(x.shape))
        cam = conv(x)
        return cam, 2 * cam - 1

    x = torch.randn(2, 3, 8, 8)
    cam, cam_aux = multi_scale_cam(cam_fn, x, scales=(1.0, 0.5, 1.5))
    assert seen == [(4, 3, 8, 8), (4, 3, 4, 4), (4, 3, 12, 12)]
    assert not cam.requires_grad
    total = torch.zeros(2, 4, 8, 8)
    total_aux = torch.zeros(2, 4, 8, 8)
    with torch.no_grad():
        for size in (8, 4, 12):
            xs = x if size == 8 else F.interpolate(
                x, size=(size, size), mode='bilinear', align_corners=False)
            a, a_flip = conv(xs), conv(xs.flip(-1))
            for fn, acc in ((lambda m: m, total), (lambda m: 2 * m - 1,
                                                   total_aux)):
                up = F.interpolate(
                    fn(a), size=(8, 8), mode='bilinear', align_corners=False)
                up_flip = F.interpolate(
                    fn(a_flip),
                    size=(8, 8),
                    mode='bilinear',
                    align_corners=False).flip(-1)
                acc += F.relu(torch.max(up, up_flip))
    for out, acc in ((cam, total), (cam_aux, total_aux)):
        acc = acc - acc.amin(dim=(2, 3), keepdim=True)
        acc = acc / (acc.amax(dim=(2, 3), keepdim=True) + 1e-5)
        torch.testing.assert_close(out, acc)
        assert out.min() >= 0 and out.max() < 1


def test_multi_scale_cam_bad_inputs():
    with pytest.raises(ValueError, match='scales'):
        multi_scale_cam(_pos_bias_cam_fn, torch.zeros(1, 3, 4, 4), ())
    with pytest.raises(ValueError, match='2B'):
        multi_scale_cam(lambda x: (x[:1], x[:1]), torch.zeros(1, 3, 4, 4))


def _random_cam_fn(num_classes: int):
    """A fixed random 1x1 projection to C maps at stride 4 (raw, signed)."""
    g = torch.Generator().manual_seed(3)
    weight = torch.randn(2 * num_classes, 3, 1, 1, generator=g)

    def cam_fn(x):
        maps = F.conv2d(F.avg_pool2d(x, 4), weight)
        return maps[:, :num_classes], maps[:, num_classes:]

    return cam_fn


def test_multi_scale_cam_classes_skip_absent_maps_exactly():
    """With ``classes`` the maps of classes present in some image equal
    the full run's (to float rounding: the CPU's bilinear kernel
    vectorises differently with the channel count), the others are 0;
    precomputed scale-1 maps give the same."""
    x = torch.randn(2, 3, 32, 32)
    cam_fn = _random_cam_fn(5)
    classes = torch.tensor([[1., 0., 0., 1., 0.], [0., 0., 0., 1., 1.]])
    full = multi_scale_cam(cam_fn, x)
    subset = multi_scale_cam(cam_fn, x, classes=classes)
    reused = multi_scale_cam(cam_fn, x, precomputed=cam_fn(x),
                             classes=classes)
    kept = [0, 3, 4]
    for f, s, r in zip(full, subset, reused):
        torch.testing.assert_close(s[:, kept], f[:, kept], rtol=1e-6,
                                   atol=1e-6)
        assert torch.equal(r, s)
        assert s[:, [1, 2]].abs().max() == 0
    with pytest.raises(ValueError, match='classes must be'):
        multi_scale_cam(cam_fn, x, classes=classes[:, :3])


def test_autocast_cam_fn_runs_the_passes_in_half_precision():
    seen = []

    def cam_fn(x):
        out = x.flatten(1) @ torch.ones(x[0].numel(), 2)
        seen.append(out.dtype)
        return out[:, :, None, None], out[:, :, None, None]

    x = torch.randn(2, 3, 4, 4)
    assert autocast_cam_fn(cam_fn, 'cpu', None) is cam_fn
    autocast_cam_fn(cam_fn, 'cpu', 'bfloat16')(x)
    cam_fn(x)
    assert seen == [torch.bfloat16, torch.float32]
    cam, _ = multi_scale_cam(autocast_cam_fn(cam_fn, 'cpu', 'bfloat16'), x,
                             scales=(1.0, ))
    assert cam.dtype == torch.float32  # the merge is an fp32 island
    with pytest.raises(ValueError, match='cam_autocast'):
        autocast_cam_fn(cam_fn, 'cpu', 'float64')
