# Copyright (c) OpenMMLab. All rights reserved.
import random

import numpy as np
import pytest
from mmcv.transforms.utils import cache_random_params

from mmseg_dupl.datasets.transforms.random_crop_with_box import (
    RandomCropWithValidBox, valid_box)


def _results(h, w, seg=False):
    rng = np.random.RandomState(1)
    # strictly positive pixels so that the black padding is recognisable
    results = dict(img=rng.randint(1, 256, (h, w, 3), dtype=np.uint8),
                   img_shape=(h, w))
    if seg:
        results['gt_seg_map'] = rng.randint(0, 21, (h, w)).astype(np.uint8)
    return results


def _fix_draws(monkeypatch, pads, origins):
    """Replace the reference RNG calls; record their bounds."""
    calls = []
    pads, origins = list(pads), list(origins)

    def fake_randint(high):
        calls.append(('randint', high))
        return pads.pop(0)

    def fake_randrange(start, stop, step=1):
        calls.append(('randrange', start, stop, step))
        return origins.pop(0)

    monkeypatch.setattr(np.random, 'randint', fake_randint)
    monkeypatch.setattr(random, 'randrange', fake_randrange)
    return calls


def test_valid_box_hand_computed():
    # no padding: the whole crop is valid
    assert valid_box((600, 700), (0, 0), (10, 20), (448, 448)).tolist() == [
        0, 448, 0, 448
    ]
    # image 300 high pasted 100 rows down, crop at row 0
    assert valid_box((300, 500), (100, 0), (0, 30), (448, 448)).tolist() == [
        100, 400, 0, 448
    ]
    # narrow image 200 wide pasted at column 248: valid cols [248, 448)
    assert valid_box((500, 200), (0, 248), (40, 0), (448, 448)).tolist() == [
        0, 448, 248, 448
    ]


def test_padded_crop_and_box(monkeypatch):
    calls = _fix_draws(monkeypatch, pads=[100, 0], origins=[0, 30])
    results = _results(300, 500, seg=True)
    img, seg = results['img'].copy(), results['gt_seg_map'].copy()
    results = RandomCropWithValidBox(crop_size=448)(results)
    # canvas 448 x 500: H_pad in [0, 148], W_pad in [0, 0], y0 in [0, 0],
    # x0 in [0, 52]
    assert calls == [('randint', 149), ('randint', 1),
                     ('randrange', 0, 1, 1), ('randrange', 0, 53, 1)]
    box = results['img_box']
    assert box.dtype == np.int64 and box.shape == (4, )
    assert box.tolist() == [100, 400, 0, 448]
    out = results['img']
    assert out.shape == (448, 448, 3) and results['img_shape'] == (448, 448)
    np.testing.assert_array_equal(out[100:400], img[:, 30:478])
    assert (out[:100] == 0).all() and (out[400:] == 0).all()
    out_seg = results['gt_seg_map']
    np.testing.assert_array_equal(out_seg[100:400], seg[:, 30:478])
    assert (out_seg[:100] == 255).all() and (out_seg[400:] == 255).all()


def test_small_image_is_padded_not_resized(monkeypatch):
    _fix_draws(monkeypatch, pads=[5, 7], origins=[0, 0])
    results = _results(20, 30)
    img = results['img'].copy()
    results = RandomCropWithValidBox(crop_size=(40, 50), pad_val=(1, 2, 3))(
        results)
    assert results['img_box'].tolist() == [5, 25, 7, 37]
    out = results['img']
    assert out.shape == (40, 50, 3)
    np.testing.assert_array_equal(out[5:25, 7:37], img)
    np.testing.assert_array_equal(out[0, 0], [1, 2, 3])
    np.testing.assert_array_equal(out[39, 49], [1, 2, 3])


def test_large_image_has_full_box():
    np.random.seed(0)
    random.seed(0)
    results = _results(460, 470)
    img = results['img'].copy()
    results = RandomCropWithValidBox(crop_size=448)(results)
    assert results['img_box'].tolist() == [0, 448, 0, 448]
    # the crop is a window of the image
    rng = random.Random(0)
    y0, x0 = rng.randrange(0, 13, 1), rng.randrange(0, 23, 1)
    np.testing.assert_array_equal(results['img'],
                                  img[y0:y0 + 448, x0:x0 + 448])


def test_seeded_reference_rngs():
    np.random.seed(4)
    random.seed(4)
    results = RandomCropWithValidBox(crop_size=448)(_results(200, 300))
    nprng, pyrng = np.random.RandomState(4), random.Random(4)
    h_pad, w_pad = nprng.randint(249), nprng.randint(149)
    assert pyrng.randrange(0, 1, 1) == 0 and pyrng.randrange(0, 1, 1) == 0
    assert results['img_box'].tolist() == [
        h_pad, h_pad + 200, w_pad, w_pad + 300
    ]


def test_cache_random_params():
    t = RandomCropWithValidBox(crop_size=448)
    with cache_random_params(t):
        boxes = {tuple(t(_results(200, 300))['img_box']) for _ in range(4)}
    assert len(boxes) == 1


def test_repr_and_bad_args():
    assert repr(RandomCropWithValidBox()) == (
        'RandomCropWithValidBox(crop_size=(448, 448), pad_val=0, '
        'seg_pad_val=255)')
    with pytest.raises(AssertionError, match='crop_size'):
        RandomCropWithValidBox(crop_size=0)
