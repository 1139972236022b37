# Copyright (c) OpenMMLab. All rights reserved.
import random

import numpy as np
import pytest
import torch
import torchvision.transforms as T
from mmcv.transforms.utils import cache_random_params
from PIL import Image, ImageFilter

from mmseg_dupl.datasets.transforms.toco_color_aug import ToCoColorAug


def _img(h=24, w=32):
    rng = np.random.RandomState(2)
    img = rng.randint(0, 256, (h, w, 3), dtype=np.uint8)
    img[:, :6] = 0  # black padding, as after RandomCropWithValidBox
    return img


class _DinoBlur:
    """The reference's GaussianBlur (DINO's utils, used by ToCo)."""

    def __init__(self, p, radius_min=0.1, radius_max=2.):
        self.prob, self.lo, self.hi = p, radius_min, radius_max

    def __call__(self, img):
        if not random.random() <= self.prob:
            return img
        return img.filter(
            ImageFilter.GaussianBlur(radius=random.uniform(self.lo, self.hi)))


def _reference(img_bgr, seed):
    """ToCo's ``global_view1`` minus ToTensor/Normalize, on PIL RGB."""
    pipeline = T.Compose([
        T.RandomApply([
            T.ColorJitter(
                brightness=0.4, contrast=0.4, saturation=0.2, hue=0.1)
        ],
                      p=0.8),
        T.RandomGrayscale(p=0.2),
        _DinoBlur(p=1.0),
    ])
    torch.manual_seed(seed)
    random.seed(seed)
    out = pipeline(Image.fromarray(np.ascontiguousarray(img_bgr[..., ::-1])))
    return np.asarray(out)[..., ::-1]


def _ours(img_bgr, seed, **kwargs):
    torch.manual_seed(seed)
    random.seed(seed)
    return ToCoColorAug(**kwargs)(dict(img=img_bgr.copy()))['img']


@pytest.mark.parametrize('seed', range(8))
def test_same_bytes_as_reference_pipeline(seed):
    img = _img()
    out = _ours(img, seed)
    assert out.dtype == np.uint8 and out.shape == img.shape
    np.testing.assert_array_equal(out, _reference(img, seed))


def test_seeds_cover_jitter_gray_and_blur_branches():
    # the parametrised seeds must exercise both sides of each gate
    gates = set()
    t = ToCoColorAug()  # cache_randomness holds a weak reference
    for seed in range(8):
        torch.manual_seed(seed)
        random.seed(seed)
        p = t._random_params()
        gates.add((p['jitter'] is not None, p['gray']))
        assert 0.1 <= p['radius'] <= 2.0
    assert {jitter for jitter, _ in gates} == {True, False}
    assert {gray for _, gray in gates} == {True, False}


def test_disabled_is_identity_and_gray():
    img = _img()
    out = _ours(img, 0, jitter_prob=0., gray_prob=0., blur_prob=0.)
    np.testing.assert_array_equal(out, img)
    out = _ours(img, 0, jitter_prob=0., gray_prob=1., blur_prob=0.)
    assert (out[..., 0] == out[..., 1]).all()
    assert (out[..., 1] == out[..., 2]).all()


def test_blur_changes_black_padding():
    img = _img()
    out = _ours(img, 0, jitter_prob=0., gray_prob=0.)
    # the padding next to the image picks up colour from the blur
    assert out[:, 5].max() > 0


def test_reproducible_and_cached():
    img = _img()
    np.testing.assert_array_equal(_ours(img, 5), _ours(img, 5))
    assert not np.array_equal(_ours(img, 5), _ours(img, 6))
    t = ToCoColorAug()
    with cache_random_params(t):
        outs = [t(dict(img=img.copy()))['img'] for _ in range(3)]
    np.testing.assert_array_equal(outs[0], outs[1])
    np.testing.assert_array_equal(outs[0], outs[2])


def test_bad_input_and_repr():
    with pytest.raises(ValueError, match='a.jpg'):
        ToCoColorAug()(dict(img=np.zeros((4, 4, 3), np.float32),
                            img_path='a.jpg'))
    with pytest.raises(AssertionError, match='gray_prob'):
        ToCoColorAug(gray_prob=2.)
    assert repr(ToCoColorAug()) == (
        "ToCoColorAug(jitter={'brightness': 0.4, 'contrast': 0.4, "
        "'saturation': 0.2, 'hue': 0.1}, jitter_prob=0.8, gray_prob=0.2, "
        'blur_prob=1.0, blur_radius=(0.1, 2.0))')
