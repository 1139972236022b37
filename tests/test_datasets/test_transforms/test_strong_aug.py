# Copyright (c) OpenMMLab. All rights reserved.
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmcv.transforms.utils import cache_random_params
from PIL import Image, ImageEnhance, ImageOps

from mmseg_dupl.datasets.transforms.strong_aug import (STRONG_OPS, StrongAug,
                                                       rescale_bilinear)
from mmseg_dupl.utils.homography import (hflip_matrix, scale_matrix,
                                         translation_matrix,
                                         warp_by_homography)

_PIL_OPS = {
    'AutoContrast': lambda im, v: ImageOps.autocontrast(im),
    'Equalize': lambda im, v: ImageOps.equalize(im),
    'Posterize': lambda im, v: ImageOps.posterize(im, max(1, int(v))),
    'Color': lambda im, v: ImageEnhance.Color(im).enhance(v),
    'Contrast': lambda im, v: ImageEnhance.Contrast(im).enhance(v),
    'Brightness': lambda im, v: ImageEnhance.Brightness(im).enhance(v),
    'Sharpness': lambda im, v: ImageEnhance.Sharpness(im).enhance(v),
}


def _img(h=48, w=64, seed=0):
    """A structured BGR test image (gradients + noise)."""
    rng = np.random.RandomState(seed)
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([(3 * x + rng.randint(0, 40, x.shape)) % 256,
                    (2 * y + x) % 256,
                    rng.randint(60, 200, x.shape)], -1)
    return img.astype(np.uint8)


def _seg(h=48, w=64, seed=0):
    return np.random.RandomState(seed).randint(0, 21, (h, w)).astype(
        np.uint8)


def _pil_reference(img_bgr, names, magnitude=10):
    """The reference's RandAugment ops on a PIL RGB image."""
    pil = Image.fromarray(np.ascontiguousarray(img_bgr[..., ::-1]))
    for name in names:
        _, lo, hi, _ = STRONG_OPS[name]
        pil = _PIL_OPS[name](pil, (float(magnitude) / 30) * (hi - lo) + lo)
    return np.asarray(pil)[..., ::-1]


def test_op_values():
    t = StrongAug()
    assert t.op_value('Posterize') == 2.0
    for name in ('Color', 'Contrast', 'Brightness', 'Sharpness'):
        assert t.op_value(name) == pytest.approx(0.7)
    assert StrongAug(magnitude=30).op_value('Color') == pytest.approx(1.9)


@pytest.mark.parametrize('name', list(STRONG_OPS))
def test_pillow_backend_equals_pil(name):
    img = _img()
    t = StrongAug(num_ops=1, ops=(name, ), flip_prob=0., scale=None)
    out = t(dict(img=img.copy()))['img']
    np.testing.assert_array_equal(out, _pil_reference(img, [name]))


@pytest.mark.parametrize('name, max_diff', [
    ('AutoContrast', 0), ('Equalize', 0), ('Posterize', 0), ('Color', 1),
    ('Contrast', 1), ('Brightness', 1)
])
def test_cv2_backend_close_to_pil(name, max_diff):
    img = _img()
    t = StrongAug(num_ops=1, ops=(name, ), flip_prob=0., scale=None,
                  backend='cv2')
    out = t(dict(img=img.copy()))['img'].astype(int)
    ref = _pil_reference(img, [name]).astype(int)
    assert np.abs(out - ref).max() <= max_diff


def test_cv2_sharpness_differs_only_at_the_border():
    img = _img()
    t = StrongAug(num_ops=1, ops=('Sharpness', ), flip_prob=0., scale=None,
                  backend='cv2')
    out = t(dict(img=img.copy()))['img'].astype(int)
    ref = _pil_reference(img, ['Sharpness']).astype(int)
    np.testing.assert_array_equal(out[1:-1, 1:-1], ref[1:-1, 1:-1])


@pytest.mark.parametrize('seed', range(4))
def test_reference_sequence_with_flip(seed):
    """random.choices(k=5) with replacement, PIL ops, then the flip."""
    img = _img()
    random.seed(seed)
    results = StrongAug(scale=None)(dict(img=img.copy()))
    names = random.Random(seed).choices(list(STRONG_OPS), k=5)
    assert [n for n, _ in results['strong_aug_ops'][:5]] == names
    assert results['strong_aug_ops'][5] == ('HorizontalFlip', None)
    ref = _pil_reference(img, names)[:, ::-1]
    np.testing.assert_array_equal(results['img'], ref)


def test_recorded_magnitudes():
    random.seed(1)
    ops = StrongAug(ops=('Posterize', 'Color', 'Equalize'))(dict(
        img=_img()))['strong_aug_ops']
    values = dict(ops)
    assert values.get('Posterize', 2) == 2
    assert values.get('Color', 0.7) == pytest.approx(0.7)
    assert values.get('Equalize') is None
    assert ops[-2:] == [('HorizontalFlip', None), ('Rescale', 0.75)]


def test_photometric_only_keeps_identity():
    results = StrongAug(flip_prob=0., scale=None)(dict(img=_img()))
    np.testing.assert_array_equal(results['homography_matrix'], np.eye(3))
    assert results['homography_matrix'].dtype == np.float32
    assert results['img_shape'] == (48, 64)


def test_flip_only_matches_warp_exactly():
    img, seg = _img(), _seg()
    results = StrongAug(num_ops=0, scale=None)(dict(img=img.copy(),
                                                    gt_seg_map=seg.copy()))
    H = results['homography_matrix']
    np.testing.assert_array_equal(H, hflip_matrix(64))
    np.testing.assert_array_equal(results['img'], img[:, ::-1])
    warped = warp_by_homography(
        torch.from_numpy(seg)[None], H, (48, 64), mode='nearest',
        padding='fill')[0].numpy()
    np.testing.assert_array_equal(results['gt_seg_map'], warped)
    np.testing.assert_array_equal(results['gt_seg_map'], seg[:, ::-1])


def test_flip_and_rescale_geometry():
    img, seg = _img(48, 64), _seg(48, 64)
    results = StrongAug(num_ops=0)(dict(img=img.copy(),
                                        gt_seg_map=seg.copy()))
    H = results['homography_matrix']
    np.testing.assert_allclose(H, scale_matrix(0.75) @ hflip_matrix(64))
    assert results['img'].shape == (36, 48, 3)
    assert results['img_shape'] == (36, 48)
    # image: the reference's F.interpolate(flip(x), scale_factor=0.75)
    x = torch.from_numpy(img[:, ::-1].copy()).permute(2, 0, 1)[None].float()
    ref = F.interpolate(x, scale_factor=0.75, mode='bilinear',
                        align_corners=False)[0].permute(1, 2, 0)
    diff = np.abs(results['img'].astype(np.float32) - ref.numpy())
    assert diff.max() <= 0.5 + 1e-4
    # the same image through the recorded homography
    warped = warp_by_homography(
        torch.from_numpy(img).permute(2, 0, 1)[None].float(), H,
        (36, 48))[0].permute(1, 2, 0).numpy()
    assert np.abs(results['img'] - warped).max() <= 0.5 + 1e-3
    # labels: exactly one warp of the weak labels by the recorded H
    out_seg = results['gt_seg_map']
    warped = warp_by_homography(
        torch.from_numpy(seg)[None], H, (36, 48), mode='nearest',
        padding='fill')[0].numpy()
    np.testing.assert_array_equal(out_seg, warped)
    assert out_seg.dtype == np.uint8 and (out_seg != 255).all()
    _assert_nearest_of_flip_rescale(out_seg, seg, 0.75)


def _assert_nearest_of_flip_rescale(out_seg, seg, s):
    """Every label is one of the <= 4 source pixels nearest to the mapped
    centre, and equals nearest-exact interpolation where there is no tie."""
    flipped = seg[:, ::-1]
    h, w = out_seg.shape
    # mapped centres in source pixel-index units
    ys = (np.arange(h) + 0.5) / s - 0.5
    xs = (np.arange(w) + 0.5) / s - 0.5
    r0 = np.clip(np.floor(ys).astype(int), 0, seg.shape[0] - 1)
    c0 = np.clip(np.floor(xs).astype(int), 0, seg.shape[1] - 1)
    r1 = np.clip(r0 + 1, 0, seg.shape[0] - 1)
    c1 = np.clip(c0 + 1, 0, seg.shape[1] - 1)
    cands = [flipped[np.ix_(r, c)] for r in (r0, r1) for c in (c0, c1)]
    assert np.any([out_seg == c for c in cands], axis=0).all()
    ref = F.interpolate(
        torch.from_numpy(flipped.copy())[None, None].float(),
        scale_factor=s, mode='nearest-exact')[0, 0].numpy()
    no_tie = np.outer(np.abs(ys % 1 - 0.5) > 1e-6,
                      np.abs(xs % 1 - 0.5) > 1e-6)
    assert no_tie.mean() > 0.4
    np.testing.assert_array_equal(out_seg[no_tie], ref[no_tie])


def test_composes_with_incoming_homography():
    T = translation_matrix(3, -2)
    results = StrongAug(num_ops=0)(dict(img=_img(), homography_matrix=T))
    expected = scale_matrix(0.75) @ hflip_matrix(64) @ T
    np.testing.assert_allclose(results['homography_matrix'], expected,
                               atol=1e-6)


def test_rescale_bilinear_hand_computed():
    # a 1x4 ramp halved: centres sample x = 0.5 and 2.5 -> (0+10)/2, (20+30)/2
    img = np.array([[0, 10, 20, 30]], np.uint8)[..., None].repeat(2, 0)
    out = rescale_bilinear(img, 0.5)
    np.testing.assert_array_equal(out[..., 0], [[5, 25]])


def test_reproducible_and_cached():
    img = _img()

    def run(seed):
        random.seed(seed)
        return StrongAug()(dict(img=img.copy()))

    a, b, c = run(7), run(7), run(8)
    assert a['strong_aug_ops'] == b['strong_aug_ops']
    np.testing.assert_array_equal(a['img'], b['img'])
    assert a['strong_aug_ops'] != c['strong_aug_ops']
    t = StrongAug(flip_prob=0.5)
    with cache_random_params(t):
        runs = [t(dict(img=img.copy())) for _ in range(4)]
    assert all(r['strong_aug_ops'] == runs[0]['strong_aug_ops']
               for r in runs)


def test_flip_probability_draws():
    random.seed(0)
    t = StrongAug(num_ops=0, flip_prob=0.5, scale=None)
    flips = {
        bool(t(dict(img=_img()))['homography_matrix'][0, 0] < 0)
        for _ in range(20)
    }
    assert flips == {True, False}


def test_repr_and_bad_args():
    assert repr(StrongAug()) == (
        "StrongAug(num_ops=5, magnitude=10, ops=('AutoContrast', "
        "'Equalize', 'Posterize', 'Color', 'Contrast', 'Brightness', "
        "'Sharpness'), flip_prob=1.0, scale=0.75, backend=pillow)")
    with pytest.raises(AssertionError, match='unknown ops'):
        StrongAug(ops=('Rotate', ))
    with pytest.raises(AssertionError, match='magnitude'):
        StrongAug(magnitude=31)
    with pytest.raises(ValueError, match='x.jpg'):
        StrongAug()(dict(img=np.zeros((4, 4), np.uint8), img_path='x.jpg'))


def test_every_seg_field_follows_the_geometry_of_a_known_mask():
    """A 48x64 mask with one labelled rectangle: after the default flip and
    x0.75 rescale it is a 36x48 mask with the mirrored, scaled rectangle;
    every ``seg_fields`` entry moves the same way."""
    seg = np.zeros((48, 64), np.uint8)
    seg[8:24, 4:20] = 7  # rows 8..23, columns 4..19
    results = StrongAug(num_ops=0)(
        dict(img=_img(48, 64), gt_seg_map=seg.copy(), edge=seg.copy() * 2,
             seg_fields=['gt_seg_map', 'edge']))
    expected = np.zeros((36, 48), np.uint8)
    # flip: columns 4..19 -> 44..59; x0.75: rows 6..17, columns 33..44
    expected[6:18, 33:45] = 7
    np.testing.assert_array_equal(results['gt_seg_map'], expected)
    np.testing.assert_array_equal(results['edge'], expected * 2)
    assert results['img'].shape[:2] == results['gt_seg_map'].shape


def test_supervised_settings_keep_the_crop_and_may_not_flip():
    """``flip_prob=0.5, scale=None``: the crop keeps its size; unflipped
    samples keep their mask."""
    seg = _seg(48, 64)
    flips = set()
    for seed in range(8):
        random.seed(seed)
        results = StrongAug(num_ops=1, flip_prob=0.5, scale=None)(
            dict(img=_img(48, 64), gt_seg_map=seg.copy()))
        assert results['gt_seg_map'].shape == (48, 64)
        flipped = ('HorizontalFlip', None) in results['strong_aug_ops']
        expected = seg[:, ::-1] if flipped else seg
        np.testing.assert_array_equal(results['gt_seg_map'], expected)
        flips.add(flipped)
    assert flips == {True, False}
