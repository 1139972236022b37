# Copyright (c) OpenMMLab. All rights reserved.
"""CAM -> label rules (algorithm.md §4.1, §10.1) and PTC targets (algorithm.md
§5)."""
import pytest
import torch

from mmseg_dupl.models.cam.cam_labels import (box_mask, cam_to_bkg_label,
                                                cam_to_label_dynamic_thr,
                                                cam_to_label_static_thr,
                                                label_to_aff_mask,
                                                scale_img_box)

IGN = 255

# A 2x3 map, two classes.
CAM = torch.tensor([[[[0.9, 0.6, 0.3], [0.1, 0.2, 0.8]],
                     [[0.2, 0.65, 0.1], [0.95, 0.0, 0.5]]]])


def test_cam_to_bkg_label_hand_values():
    both = cam_to_bkg_label(CAM, torch.tensor([[1., 1.]]), bkg_thr=0.5)
    assert both.dtype == torch.long
    assert both.tolist() == [[[1, 2, 0], [2, 0, 1]]]
    # Class 2 absent: its CAM is masked out.
    only1 = cam_to_bkg_label(CAM, torch.tensor([[1., 0.]]), bkg_thr=0.5)
    assert only1.tolist() == [[[1, 1, 0], [0, 0, 1]]]
    # v <= bkg_thr is background (equality included).
    at_thr = cam_to_bkg_label(CAM, torch.tensor([[1., 0.]]), bkg_thr=0.6)
    assert at_thr.tolist() == [[[1, 0, 0], [0, 0, 1]]]


def test_static_thr_ignore_mid_hand_values():
    cls = torch.tensor([[1., 1.]])
    out = cam_to_label_static_thr(CAM, cls, high_thr=0.7, low_thr=0.25)
    # v: [[.9, .65, .3], [.95, .2, .8]]
    assert out.tolist() == [[[1, IGN, IGN], [2, 0, 1]]]
    # Any bkg_thr in [low, high] is overridden by the band.
    for bkg in (0.25, 0.3, 0.6, 0.7):
        out2 = cam_to_label_static_thr(
            CAM, cls, bkg_thr=bkg, high_thr=0.7, low_thr=0.25)
        assert torch.equal(out, out2)


def test_dynamic_thr_per_image_thresholds_and_box():
    cam = torch.cat([CAM, CAM])
    cls = torch.ones(2, 2)
    high = torch.tensor([0.7, 0.6])
    out = cam_to_label_dynamic_thr(
        cam, cls, image_thresholds=high, low_threshold=0.25)
    assert out[0].tolist() == [[1, IGN, IGN], [2, 0, 1]]
    assert out[1].tolist() == [[1, 2, IGN], [2, 0, 1]]
    same = cam_to_label_dynamic_thr(
        cam, cls, image_thresholds=torch.tensor([.7, .7]), low_threshold=0.25)
    torch.testing.assert_close(
        same, cam_to_label_static_thr(cam, cls, high_thr=0.7, low_thr=0.25))
    box = torch.tensor([[0, 1, 1, 3], [1, 448, 0, 448]])
    boxed = cam_to_label_dynamic_thr(
        cam, cls, img_box=box, image_thresholds=high, low_threshold=0.25)
    assert boxed[0].tolist() == [[IGN, IGN, IGN], [IGN, IGN, IGN]]
    assert boxed[1].tolist() == [[IGN, IGN, IGN], [2, 0, 1]]
    box0 = torch.tensor([[0, 2, 1, 3], [0, 0, 0, 3]])
    boxed0 = cam_to_bkg_label(cam, cls, img_box=box0, bkg_thr=0.5)
    assert boxed0[0].tolist() == [[IGN, 2, 0], [IGN, 0, 1]]
    assert (boxed0[1] == IGN).all()


def test_cam_labels_bad_inputs():
    with pytest.raises(ValueError, match='cls_labels'):
        cam_to_bkg_label(CAM, torch.ones(1, 3))
    with pytest.raises(ValueError, match=r'\(B,\)'):
        cam_to_label_dynamic_thr(
            CAM, torch.ones(1, 2), image_thresholds=torch.ones(2),
            low_threshold=0.2)
    with pytest.raises(ValueError, match=r'\(B,\)'):
        cam_to_label_dynamic_thr(CAM, torch.ones(1, 2), 0.7, low_threshold=0.2)
    with pytest.raises(ValueError, match='cam_to_label_dynamic_thr'):
        cam_to_label_static_thr(
            CAM, torch.ones(1, 2), high_thr=torch.ones(1), low_thr=0.2)
    with pytest.raises(ValueError, match='non-negative'):
        cam_to_bkg_label(
            CAM, torch.ones(1, 2), img_box=torch.tensor([[-1, 2, 0, 3]]))


def test_token_grid_box_quirk_and_correction():
    cam = torch.full((1, 1, 28, 28), 0.9)
    cls = torch.ones(1, 1)
    box = torch.tensor([[100, 448, 0, 448]])
    # Default (official) path: the 448-pixel box on the 28-token grid, so
    # the valid rows [100, 28) are empty.
    quirk = cam_to_label_static_thr(
        cam, cls, img_box=box, high_thr=0.7, low_thr=0.25)
    assert (quirk == IGN).all()
    fixed_box = scale_img_box(box, 448, 28)
    assert fixed_box.tolist() == [[6, 28, 0, 28]]
    fixed = cam_to_label_static_thr(
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
