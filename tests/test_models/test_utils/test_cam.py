# Copyright (c) OpenMMLab. All rights reserved.
import pytest
import torch
import torch.nn.functional as F

from mmseg_dupl.models.utils.cam import (autocast_cam_fn, box_mask,
                                         cam_to_label, label_to_aff_mask,
                                         multi_scale_cam, normalize_cam,
                                         scale_img_box)

IGN = 255


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


# A 2x3 map, two classes.
CAM = torch.tensor([[[[0.9, 0.6, 0.3], [0.1, 0.2, 0.8]],
                     [[0.2, 0.65, 0.1], [0.95, 0.0, 0.5]]]])


def test_cam_to_label_eval_path_hand_values():
    both = cam_to_label(CAM, torch.tensor([[1., 1.]]), bkg_thr=0.5)
    assert both.dtype == torch.long
    assert both.tolist() == [[[1, 2, 0], [2, 0, 1]]]
    # Class 2 absent: its CAM is masked out.
    only1 = cam_to_label(CAM, torch.tensor([[1., 0.]]), bkg_thr=0.5)
    assert only1.tolist() == [[[1, 1, 0], [0, 0, 1]]]
    # v <= bkg_thr is background (equality included).
    at_thr = cam_to_label(CAM, torch.tensor([[1., 0.]]), bkg_thr=0.6)
    assert at_thr.tolist() == [[[1, 0, 0], [0, 0, 1]]]


def test_cam_to_label_ignore_mid_hand_values():
    cls = torch.tensor([[1., 1.]])
    out = cam_to_label(CAM, cls, high_thr=0.7, low_thr=0.25)
    # v: [[.9, .65, .3], [.95, .2, .8]]
    assert out.tolist() == [[[1, IGN, IGN], [2, 0, 1]]]
    # Any bkg_thr in [low, high] is overridden by the band.
    for bkg in (0.25, 0.3, 0.6, 0.7):
        out2 = cam_to_label(CAM, cls, bkg_thr=bkg, high_thr=0.7, low_thr=0.25)
        assert torch.equal(out, out2)


def test_cam_to_label_per_image_high_thr_and_box():
    cam = torch.cat([CAM, CAM])
    cls = torch.ones(2, 2)
    high = torch.tensor([0.7, 0.6])
    out = cam_to_label(cam, cls, high_thr=high, low_thr=0.25)
    assert out[0].tolist() == [[1, IGN, IGN], [2, 0, 1]]
    assert out[1].tolist() == [[1, 2, IGN], [2, 0, 1]]
    same = cam_to_label(
        cam, cls, high_thr=torch.tensor([.7, .7]), low_thr=0.25)
    torch.testing.assert_close(
        same, cam_to_label(cam, cls, high_thr=0.7, low_thr=0.25))
    box = torch.tensor([[0, 1, 1, 3], [1, 448, 0, 448]])
    boxed = cam_to_label(cam, cls, img_box=box, high_thr=high, low_thr=0.25)
    assert boxed[0].tolist() == [[IGN, IGN, IGN], [IGN, IGN, IGN]]
    assert boxed[1].tolist() == [[IGN, IGN, IGN], [2, 0, 1]]
    box0 = torch.tensor([[0, 2, 1, 3], [0, 0, 0, 3]])
    boxed0 = cam_to_label(cam, cls, img_box=box0, bkg_thr=0.5)
    assert boxed0[0].tolist() == [[IGN, 2, 0], [IGN, 0, 1]]
    assert (boxed0[1] == IGN).all()


def test_cam_to_label_bad_inputs():
    with pytest.raises(ValueError, match='cls_labels'):
        cam_to_label(CAM, torch.ones(1, 3))
    with pytest.raises(ValueError, match='both'):
        cam_to_label(CAM, torch.ones(1, 2), high_thr=0.7)
    with pytest.raises(ValueError, match=r'\(B,\)'):
        cam_to_label(
            CAM, torch.ones(1, 2), high_thr=torch.ones(2), low_thr=0.2)
    with pytest.raises(ValueError, match='non-negative'):
        cam_to_label(
            CAM, torch.ones(1, 2), img_box=torch.tensor([[-1, 2, 0, 3]]))


def test_token_grid_box_quirk_and_correction():
    cam = torch.full((1, 1, 28, 28), 0.9)
    cls = torch.ones(1, 1)
    box = torch.tensor([[100, 448, 0, 448]])
    # Default (official) path: the 448-pixel box on the 28-token grid, so
    # the valid rows [100, 28) are empty.
    quirk = cam_to_label(cam, cls, img_box=box, high_thr=0.7, low_thr=0.25)
    assert (quirk == IGN).all()
    fixed_box = scale_img_box(box, 448, 28)
    assert fixed_box.tolist() == [[6, 28, 0, 28]]
    fixed = cam_to_label(
        cam, cls, img_box=fixed_box, high_thr=0.7, low_thr=0.25)
    assert (fixed[0, 6:] == 1).all() and (fixed[0, :6] == IGN).all()


def test_scale_img_box_floor_ceil_clamp():
    box = torch.tensor([[0, 448, 0, 448], [10, 300, 17, 440], [31, 32, 0,
                                                               460]])
    out = scale_img_box(box, 448, 28)
    assert out.dtype == torch.long
    # 10/16=0.625 -> 0, 300/16=18.75 -> 19, 17/16 -> 1, 440/16=27.5 -> 28,
    # 31/16 -> 1, 32/16=2 -> 2, 460/16 -> 29 clamped to 28.
    assert out.tolist() == [[0, 28, 0, 28], [0, 19, 1, 28], [1, 2, 0, 28]]
    rect = scale_img_box(torch.tensor([[8, 16, 8, 16]]), (32, 64), (4, 4))
    assert rect.tolist() == [[1, 2, 0, 1]]


def test_box_mask_matches_slicing():
    box = torch.tensor([[1, 3, 0, 9], [2, 2, 1, 2]])
    mask = box_mask(box, 4, 5)
    for b, (r0, r1, c0, c1) in enumerate(box.tolist()):
        ref = torch.zeros(4, 5, dtype=torch.bool)
        ref[r0:r1, c0:c1] = True
        assert torch.equal(mask[b], ref)


def test_label_to_aff_mask_three_tokens():
    label = torch.tensor([[0, 1, IGN], [1, 1, 0]])
    mask = label_to_aff_mask(label)
    assert mask.dtype == torch.float32 and mask.shape == (2, 3, 3)
    assert mask[0].tolist() == [[IGN, 0, IGN], [0, IGN, IGN], [IGN, IGN, IGN]]
    assert mask[1].tolist() == [[IGN, 1, 0], [1, IGN, 0], [0, 0, IGN]]
    # A (B, h, w) label is flattened row-major.
    grid = label_to_aff_mask(label.view(2, 1, 3))
    assert torch.equal(grid, mask)


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
