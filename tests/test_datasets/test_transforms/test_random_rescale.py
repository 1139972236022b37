# Copyright (c) OpenMMLab. All rights reserved.
import random

import cv2
import numpy as np
import pytest
from mmcv.transforms.utils import cache_random_params
from PIL import Image

from mmseg.registry import TRANSFORMS
from mmseg_dupl.datasets.transforms.random_rescale import RandomRescale


def _results(h=10, w=7, seg=False):
    rng = np.random.RandomState(0)
    results = dict(img=rng.randint(0, 256, (h, w, 3), dtype=np.uint8),
                   img_shape=(h, w), ori_shape=(h, w))
    if seg:
        results['gt_seg_map'] = rng.randint(0, 5, (h, w)).astype(np.uint8)
    return results


def _fix_ratio(monkeypatch, ratio):
    calls = []

    def fake_uniform(low, high):
        calls.append((low, high))
        return ratio

    monkeypatch.setattr(random, 'uniform', fake_uniform)
    return calls


def test_resize_by_drawn_ratio(monkeypatch):
    calls = _fix_ratio(monkeypatch, 1.5)
    t = TRANSFORMS.build(dict(type='RandomRescale'))
    results = t(_results(h=10, w=7, seg=True))
    assert calls == [(0.5, 2.0)]
    # (int(1.5 * 7), int(1.5 * 10)) = (10, 15) as (w, h)
    assert results['img'].shape == (15, 10, 3)
    assert results['img'].dtype == np.uint8
    assert results['img_shape'] == (15, 10)
    assert results['scale'] == (10, 15)
    assert results['scale_factor'] == (10 / 7, 15 / 10)
    assert results['gt_seg_map'].shape == (15, 10)
    src = set(np.unique(_results(seg=True)['gt_seg_map']))
    assert set(np.unique(results['gt_seg_map'])) <= src


def test_int_truncation(monkeypatch):
    # 0.55 * 7 = 3.85 -> 3 and 0.55 * 10 = 5.5 -> 5 (int() truncates)
    _fix_ratio(monkeypatch, 0.55)
    results = RandomRescale()(_results(h=10, w=7))
    assert results['img'].shape[:2] == (5, 3)


def test_pillow_backend_is_pil_bilinear(monkeypatch):
    _fix_ratio(monkeypatch, 0.6)
    results = _results(h=40, w=30)
    img = results['img'].copy()
    out = RandomRescale()(results)['img']
    ref = np.asarray(Image.fromarray(img).resize((18, 24), Image.BILINEAR))
    np.testing.assert_array_equal(out, ref)


def test_cv2_backend(monkeypatch):
    _fix_ratio(monkeypatch, 0.6)
    results = _results(h=40, w=30)
    img = results['img'].copy()
    out = RandomRescale(backend='cv2')(results)['img']
    ref = cv2.resize(img, (18, 24), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(out, ref)


def test_seeded_ratio_uses_python_random():
    random.seed(3)
    shape = RandomRescale()(_results(h=100, w=80))['img'].shape
    r = random.Random(3).uniform(0.5, 2.0)
    assert shape[:2] == (int(r * 100), int(r * 80))


def test_cache_random_params():
    t = RandomRescale()
    with cache_random_params(t):
        shapes = {t(_results(h=100, w=80))['img'].shape for _ in range(3)}
    assert len(shapes) == 1


def test_empty_output_raises(monkeypatch):
    _fix_ratio(monkeypatch, 0.5)
    results = _results(h=1, w=1)
    results['img_path'] = 'tiny.jpg'
    with pytest.raises(ValueError, match='tiny.jpg'):
        RandomRescale()(results)


def test_repr_and_bad_args():
    assert repr(RandomRescale()) == (
        'RandomRescale(ratio_range=(0.5, 2.0), interpolation=bilinear, '
        'backend=pillow)')
    with pytest.raises(AssertionError, match='ratio_range'):
        RandomRescale(ratio_range=(2.0, 0.5))
    with pytest.raises(AssertionError, match='backend'):
        RandomRescale(backend='skimage')
