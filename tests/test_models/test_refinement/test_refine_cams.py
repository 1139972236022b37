# Copyright (c) OpenMMLab. All rights reserved.
import pytest
import torch
import torch.nn.functional as F

from mmseg_dupl.models.refinement.par import par_refine
from mmseg_dupl.models.refinement.refine_cams import (
    IMAGENET_MEAN_255, IMAGENET_STD_255, denormalize_truncated, present_keys,
    refine_cams_with_dynamic_thres)

IGN = 255


def _identity_par(image, probs):
    return probs


def test_denormalize_truncates():
    mean, std = IMAGENET_MEAN_255, IMAGENET_STD_255
    # Pixel values 100.9, 0.4 and 254.99 (channels R, G, B): truncated.
    raw = torch.tensor([100.9, 0.4, 254.99])
    x = (raw - torch.tensor(mean)) / torch.tensor(std)
    out = denormalize_truncated(x.view(1, 3, 1, 1), mean, std)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out.flatten(),
                               torch.tensor([100., 0., 254.]) / 255)
    # Out-of-range values are clamped instead of wrapping around.
    far = torch.tensor([-10., 10., 0.]).view(1, 3, 1, 1)
    assert denormalize_truncated(far).flatten()[:2].tolist() == [0., 1.]
    with pytest.raises(ValueError, match='B, 3, H, W'):
        denormalize_truncated(torch.zeros(1, 1, 2, 2))


def test_present_keys():
    cls = torch.tensor([[0., 1., 0., 1.], [0., 0., 0., 0.], [1., 1., 1., 0.]])
    keys, valid = present_keys(cls)
    assert keys.shape == (3, 4)
    assert keys[0, :3].tolist() == [0, 2, 4]
    assert valid[0].tolist() == [True, True, True, False]
    assert keys[1, 0] == 0 and valid[1].tolist() == [True] + [False] * 3
    assert keys[2].tolist() == [0, 1, 2, 3] and valid[2].all()


def test_refine_hand_values_with_identity_par():
    # 1 x 4 map, class 1 present (class 2 absent but with a large CAM).
    cams = torch.tensor([[[[0.9, 0.5, 0.1, 0.71]], [[1., 1., 1., 1.]]]])
    image = torch.rand(1, 3, 1, 4)
    cls = torch.tensor([[1., 0.]])
    out = refine_cams_with_dynamic_thres(
        image,
        cams,
        cls,
        image_thresholds=0.7,
        low_threshold=0.25,
        down_scale=1,
        par=_identity_par)
    # 0.9 > 0.7: class; 0.25 < 0.5 <= 0.7: ignore; 0.1: bg; 0.71: class.
    assert out.dtype == torch.long
    assert out.tolist() == [[[1, IGN, 0, 1]]]
    # A per-image tau_h of 0.8 turns the 0.71 pixel into the ignore band.
    out = refine_cams_with_dynamic_thres(
        image,
        cams,
        cls,
        image_thresholds=torch.tensor([0.8]),
        down_scale=1,
        par=_identity_par)
    assert out.tolist() == [[[1, IGN, 0, IGN]]]
    box = torch.tensor([[0, 1, 1, 3]])
    out = refine_cams_with_dynamic_thres(
        image,
        cams,
        cls,
        image_thresholds=0.7,
        img_box=box,
        down_scale=1,
        par=_identity_par)
    assert out.tolist() == [[[IGN, IGN, 0, IGN]]]


def _official_loop(image, cams, cls_labels, high_thr, low_thr, img_box,
                   down_scale, ignore_index, par):
    """The official per-image procedure, transcribed (algorithm.md §4.3)."""
    b, _, h, w = image.shape
    small = [h // down_scale, w // down_scale]
    _images = F.interpolate(
        image, size=small, mode='bilinear', align_corners=False)
    high = high_thr.view(b, 1, 1, 1) if torch.is_tensor(high_thr) \
        else high_thr
    bkg_h = torch.ones(b, 1, h, w) * high
    bkg_l = torch.ones(b, 1, h, w) * low_thr
    cls = torch.cat([torch.ones(b, 1), cls_labels], dim=1)
    label_h = torch.full((b, h, w), float(ignore_index))
    label_l = label_h.clone()
    g_h = F.interpolate(
        torch.cat([bkg_h, cams], 1),
        size=small,
        mode='bilinear',
        align_corners=False)
    g_l = F.interpolate(
        torch.cat([bkg_l, cams], 1),
        size=small,
        mode='bilinear',
        align_corners=False)
    for idx, (r0, r1, c0, c1) in enumerate(img_box.tolist()):
        key = torch.nonzero(cls[idx])[:, 0]
        for g, lab in ((g_h, label_h), (g_l, label_l)):
            q = g[idx, key].unsqueeze(0).softmax(dim=1)
            ref = par(_images[[idx]], q)
            ref = F.interpolate(
                ref, size=(h, w), mode='bilinear', align_corners=False)
            out = key[ref.argmax(dim=1)][0]
            lab[idx, r0:r1, c0:c1] = out[r0:r1, c0:c1].float()
    label = label_h.clone()
    label[label_h == 0] = ignore_index
    label[(label_h + label_l) == 0] = 0
    return label.long()


def test_refine_matches_official_per_image_loop():
    torch.manual_seed(0)
    b, c, h, w = 3, 5, 24, 20
    image = torch.rand(b, 3, h, w)
    cams = torch.rand(b, c, h, w)**2
    cls = torch.tensor([[1., 0., 0., 1., 1.], [0., 0., 0., 0., 0.],
                        [0., 1., 0., 0., 0.]])
    high = torch.tensor([0.7, 0.55, 0.6])
    box = torch.tensor([[0, 24, 0, 20], [2, 24, 0, 17], [0, 13, 5, 20]])

    def par(img, probs):
        return par_refine(img, probs, dilations=(1, 2, 4), num_iter=5)

    out = refine_cams_with_dynamic_thres(image, cams * cls[..., None, None],
                                         cls, high, 0.25, box, 2, IGN, par)
    ref = _official_loop(image, cams * cls[..., None, None], cls, high, 0.25,
                         box, 2, IGN, par)
    assert torch.equal(out, ref)
    assert set(out[0].unique().tolist()) <= {0, 1, 4, 5, IGN}
    # No class present: only background (or ignore outside the box).
    assert set(out[1].unique().tolist()) <= {0, IGN}
    # Scalar tau_h (COCO's refine_cams_with_bkg_v2) == constant tensor.
    out_scalar = refine_cams_with_dynamic_thres(image, cams, cls, 0.6, par=par)
    out_tensor = refine_cams_with_dynamic_thres(
        image, cams, cls, torch.full((3, ), 0.6), par=par)
    assert torch.equal(out_scalar, out_tensor)


def test_refine_default_par_runs_and_errors():
    image, cams = torch.rand(1, 3, 16, 16), torch.rand(1, 2, 16, 16)
    out = refine_cams_with_dynamic_thres(image, cams, torch.ones(1, 2), 0.7)
    assert out.shape == (1, 16, 16)
    with pytest.raises(ValueError, match='share B, H, W'):
        refine_cams_with_dynamic_thres(image, cams[..., :8], torch.ones(1, 2),
                                       0.7)
    with pytest.raises(ValueError, match='cls_labels'):
        refine_cams_with_dynamic_thres(image, cams, torch.ones(1, 3), 0.7)
    with pytest.raises(ValueError, match=r'\(B,\)'):
        refine_cams_with_dynamic_thres(image, cams, torch.ones(1, 2),
                                       torch.ones(2))


def test_first_argmax_equals_torch_argmax_with_ties_and_inf():
    from mmseg_dupl.models.refinement.refine_cams import _first_argmax
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 3, (2, 4, 9, 7), generator=g).float()  # ties
    x[:, 2, :3] = float('-inf')
    x[0, :, 0, 0] = float('-inf')
    x[0, 1, 0, 0] = 0.
    assert torch.equal(_first_argmax(x), x.argmax(dim=1))
