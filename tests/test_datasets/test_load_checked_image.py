# Copyright (c) OpenMMLab. All rights reserved.
"""Tests for LoadCheckedImageFromFile and its pure helpers."""
import io

import numpy as np
import pytest
from mmcv.transforms import LoadImageFromFile
from PIL import Image

from mmseg.registry import TRANSFORMS
from mmseg_dupl.datasets.transforms.load_checked_image import (
    LoadCheckedImageFromFile, looks_truncated, pil_decode_error,
    to_three_channels)


def _jpeg_bytes(h=16, w=20, seed=0):
    rgb = np.random.default_rng(seed).integers(0, 255, (h, w, 3), np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format='JPEG', quality=95)
    return buf.getvalue()


def _png_bytes(arr):
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format='PNG')
    return buf.getvalue()


@pytest.fixture
def color_jpg(tmp_path):
    path = tmp_path / 'color.jpg'
    path.write_bytes(_jpeg_bytes())
    return str(path)


def test_same_output_as_mmcv_loader(color_jpg):
    ours = TRANSFORMS.build(dict(type='LoadCheckedImageFromFile'))
    assert isinstance(ours, LoadCheckedImageFromFile)
    a = ours(dict(img_path=color_jpg))
    b = LoadImageFromFile()(dict(img_path=color_jpg))
    assert set(a) == set(b) == {'img_path', 'img', 'img_shape', 'ori_shape'}
    np.testing.assert_array_equal(a['img'], b['img'])
    assert a['img'].dtype == np.uint8 and a['img'].shape == (16, 20, 3)
    assert a['img_shape'] == a['ori_shape'] == (16, 20)


def test_to_float32_and_pillow_backend(color_jpg):
    out = LoadCheckedImageFromFile(
        to_float32=True, imdecode_backend='pillow')(dict(img_path=color_jpg))
    assert out['img'].dtype == np.float32 and out['img'].shape == (16, 20, 3)


def test_repr_like_mmcv():
    assert repr(LoadCheckedImageFromFile()).startswith(
        'LoadCheckedImageFromFile(ignore_empty=False, to_float32=False')


def test_looks_truncated_hand_cases():
    jpg = _jpeg_bytes()
    assert not looks_truncated(jpg)
    assert looks_truncated(jpg[:len(jpg) // 2])  # cut in the header
    big = _jpeg_bytes(64, 64)
    assert looks_truncated(big[:len(big) * 2 // 3])  # cut in the scan
    assert looks_truncated(big[:-2])  # only the end marker missing
    assert not looks_truncated(jpg + b'trailing junk')
    png = _png_bytes(np.zeros((4, 4), np.uint8))
    assert not looks_truncated(png)
    assert looks_truncated(png[:-12])
    assert not looks_truncated(b'GIF89a...')  # other formats: no opinion


def test_pil_decode_error():
    jpg = _jpeg_bytes()
    assert pil_decode_error(jpg) is None
    assert 'truncated' in pil_decode_error(jpg[:len(jpg) * 2 // 3])
    assert pil_decode_error(b'\xff\xd8 nonsense') is not None


def test_to_three_channels_hand_cases():
    gray = np.array([[1, 2], [3, 4]], np.uint8)
    out = to_three_channels(gray)
    assert out.shape == (2, 2, 3)
    np.testing.assert_array_equal(out[..., 0], gray)
    np.testing.assert_array_equal(out[..., 2], gray)
    assert to_three_channels(gray[..., None]).shape == (2, 2, 3)
    bgra = np.arange(16, dtype=np.uint8).reshape(2, 2, 4)
    np.testing.assert_array_equal(to_three_channels(bgra), bgra[..., :3])
    bgr = np.zeros((2, 2, 3), np.uint8)
    assert to_three_channels(bgr) is bgr
    with pytest.raises(ValueError, match='channels 2'):
        to_three_channels(np.zeros((2, 2, 2), np.uint8))


def test_trailing_junk_after_jpeg_is_fine(tmp_path):
    path = tmp_path / 'junk_after_eoi.jpg'
    path.write_bytes(_jpeg_bytes() + b'\xff\xda junk appended by a tool')
    out = LoadCheckedImageFromFile()(dict(img_path=str(path)))
    assert out['img'].shape == (16, 20, 3)


def test_rgba_png_becomes_bgr(tmp_path):
    rgba = np.zeros((3, 5, 4), np.uint8)
    rgba[..., 0] = 200  # red
    rgba[..., 3] = 17  # alpha
    path = tmp_path / 'rgba.png'
    path.write_bytes(_png_bytes(rgba))
    for flag in ('color', 'unchanged'):
        img = LoadCheckedImageFromFile(color_type=flag)(
            dict(img_path=str(path)))['img']
        assert img.shape == (3, 5, 3)
        np.testing.assert_array_equal(img[0, 0], [0, 0, 200])  # BGR


def test_grayscale_flag_still_three_channels(color_jpg):
    img = LoadCheckedImageFromFile(color_type='grayscale')(
        dict(img_path=color_jpg))['img']
    assert img.shape == (16, 20, 3)
    np.testing.assert_array_equal(img[..., 0], img[..., 1])
