# Copyright (c) OpenMMLab. All rights reserved.
"""Tests for mmseg_dupl.datasets.cls_labels (pure functions)."""
import json

import numpy as np
import pytest
from PIL import Image

from mmseg_dupl.datasets.cls_labels import (cls_labels_from_mask,
                                            cls_labels_from_mask_files,
                                            load_cls_labels, read_mask,
                                            write_cls_labels)


def _save_p_png(label, path):
    # A 'P' PNG needs a full palette, or PIL packs indices into fewer bits.
    h, w = label.shape
    png = Image.frombytes('P', (w, h), label.astype(np.uint8).tobytes())
    png.putpalette(list(range(256)) * 3)
    png.save(path)


def test_from_mask_hand_computed():
    # ids 0 (bg), 2, 5 and 255 (ignore): classes 2 and 5 -> entries 1, 4.
    mask = np.array([[0, 2, 2], [255, 5, 0]], dtype=np.uint8)
    out = cls_labels_from_mask(mask, num_classes=5)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [0, 1, 0, 0, 1])


def test_from_mask_background_and_ignore_only_is_empty():
    mask = np.array([[0, 255], [0, 0]], dtype=np.uint8)
    np.testing.assert_array_equal(cls_labels_from_mask(mask, 3), [0, 0, 0])


def test_from_mask_last_class_included():
    mask = np.full((2, 2), 20, dtype=np.uint8)
    out = cls_labels_from_mask(mask, 20)
    assert out[19] == 1 and out.sum() == 1


@pytest.mark.parametrize('bad_id', [21, 100, 254])
def test_from_mask_id_outside_dataset_names_file(bad_id):
    mask = np.array([[0, bad_id]], dtype=np.uint8)
    with pytest.raises(ValueError, match=rf'a/b\.png.*\[{bad_id}\]'):
        cls_labels_from_mask(mask, 20, path='a/b.png')


def test_from_mask_custom_ignore_index():
    mask = np.array([[0, 1, 250]], dtype=np.uint8)
    np.testing.assert_array_equal(
        cls_labels_from_mask(mask, 2, ignore_index=250), [1, 0])
    # 255 is not ignored any more, so it is an id outside the dataset.
    with pytest.raises(ValueError, match='255'):
        cls_labels_from_mask(
            np.array([[255]], np.uint8), 2, ignore_index=250)


def test_write_then_load_roundtrip(tmp_path):
    labels = {
        '2007_000032': np.array([1, 0, 0, 1], np.uint8),
        '2007_000039': np.array([0., 0., 1., 0.], np.float64),
    }
    path = str(tmp_path / 'sub' / 'cls_labels_onehot.npy')
    assert write_cls_labels(labels, path) == path
    # official format: a pickled dict read with allow_pickle + .item()
    raw = np.load(path, allow_pickle=True).item()
    assert set(raw) == set(labels)
    assert raw['2007_000032'].dtype == np.float32
    loaded = load_cls_labels(path, num_classes=4)
    np.testing.assert_array_equal(loaded['2007_000032'], [1, 0, 0, 1])
    np.testing.assert_array_equal(loaded['2007_000039'], [0, 0, 1, 0])
    assert loaded['2007_000039'].dtype == np.float32
    assert not list((tmp_path / 'sub').glob('*.tmp*'))


def test_load_accepts_official_float_dict(tmp_path):
    path = str(tmp_path / 'l.npy')
    np.save(path, {'a': np.eye(20, dtype=np.float32)[3]})
    out = load_cls_labels(path)
    assert out['a'].shape == (20, ) and out['a'][3] == 1


def test_load_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.npy'):
        load_cls_labels(str(tmp_path / 'nope.npy'))


def test_load_rejects_non_npy(tmp_path):
    path = tmp_path / 'labels.json'
    path.write_text(json.dumps({'a': [1]}))
    with pytest.raises(ValueError, match=r'labels\.json.*\.npy'):
        load_cls_labels(str(path))


def test_load_rejects_plain_array(tmp_path):
    path = str(tmp_path / 'arr.npy')
    np.save(path, np.zeros((3, 20)))
    with pytest.raises(ValueError, match=r'arr\.npy.*dict'):
        load_cls_labels(path)


def test_load_rejects_garbage_bytes(tmp_path):
    path = tmp_path / 'bad.npy'
    path.write_bytes(b'not a numpy file at all')
    with pytest.raises(ValueError, match=r'bad\.npy'):
        load_cls_labels(str(path))


def test_load_wrong_length_names_key_and_file(tmp_path):
    path = str(tmp_path / 'l.npy')
    np.save(path, {'ok': np.zeros(20), 'short': np.zeros(19)})
    with pytest.raises(ValueError, match=r"l\.npy.*'short'.*19.*20"):
        load_cls_labels(path, num_classes=20)
    # without num_classes the lengths must still agree with each other
    with pytest.raises(ValueError, match="'short'"):
        load_cls_labels(path)


def test_load_rejects_non_binary_values(tmp_path):
    path = str(tmp_path / 'l.npy')
    np.save(path, {'soft': np.array([0.5, 0.0])})
    with pytest.raises(ValueError, match="'soft'.*multi-hot"):
        load_cls_labels(path)


def test_write_requires_npy_suffix(tmp_path):
    with pytest.raises(ValueError, match=r'\.npy'):
        write_cls_labels({'a': np.zeros(2)}, str(tmp_path / 'labels'))


def test_read_mask_p_and_l_modes(tmp_path):
    label = np.array([[0, 3], [255, 1]], np.uint8)
    _save_p_png(label, tmp_path / 'p.png')
    Image.fromarray(label).save(tmp_path / 'l.png')
    np.testing.assert_array_equal(read_mask(str(tmp_path / 'p.png')), label)
    np.testing.assert_array_equal(read_mask(str(tmp_path / 'l.png')), label)


def test_read_mask_rejects_rgb_and_missing_and_corrupt(tmp_path):
    Image.new('RGB', (4, 4), (128, 0, 0)).save(tmp_path / 'rgb.png')
    with pytest.raises(ValueError, match=r'rgb\.png.*single-channel'):
        read_mask(str(tmp_path / 'rgb.png'))
    with pytest.raises(FileNotFoundError, match=r'gone\.png'):
        read_mask(str(tmp_path / 'gone.png'))
    (tmp_path / 'junk.png').write_bytes(b'\x89PNG\r\n\x1a\n garbage')
    with pytest.raises(ValueError, match=r'junk\.png'):
        read_mask(str(tmp_path / 'junk.png'))


def test_from_mask_files(tmp_path):
    _save_p_png(np.array([[0, 1]]), tmp_path / 'x.png')
    _save_p_png(np.array([[3, 255]]), tmp_path / 'y.png')
    out = cls_labels_from_mask_files(['x', 'y'], str(tmp_path), 3)
    np.testing.assert_array_equal(out['x'], [1, 0, 0])
    np.testing.assert_array_equal(out['y'], [0, 0, 1])
    _save_p_png(np.array([[9]]), tmp_path / 'z.png')
    with pytest.raises(ValueError, match=r'z\.png'):
        cls_labels_from_mask_files(['z'], str(tmp_path), 3)
