# Copyright (c) OpenMMLab. All rights reserved.
"""Tests for the synthetic VOC-layout dataset generator."""
import os

import numpy as np
import pytest
from PIL import Image

from mmseg_dupl.datasets.cls_labels import (cls_labels_from_mask,
                                            load_cls_labels)
from mmseg_dupl.visualization.palette import voc_colormap
from toy_voc_data import (BACKGROUND_KINDS, TOY_CLASSES, TOY_PALETTE,
                          ignore_border, make_scene, make_toy_voc,
                          sample_scene_spec)

C = len(TOY_CLASSES) - 1


@pytest.fixture(scope='module')
def toy(tmp_path_factory):
    out = tmp_path_factory.mktemp('toy')
    summary = make_toy_voc(
        str(out), num_train=12, num_val=4, num_test=3, seed=1)
    return out, summary


def _split(out, name):
    path = out / 'ImageSets' / 'Segmentation' / f'{name}.txt'
    return path.read_text().split()


def test_layout_and_split_files(toy):
    out, summary = toy
    train, val, test = (_split(out, s) for s in ('train', 'val', 'test'))
    assert (len(train), len(val), len(test)) == (12, 4, 3)
    assert not set(train) & set(val) and not set(val) & set(test)
    for name in train + val + test:
        assert (out / 'JPEGImages' / f'{name}.jpg').is_file()
    for name in train + val:
        assert (out / 'SegmentationClass' / f'{name}.png').is_file()
    # like VOC test: no masks at all for the test split
    for name in test:
        assert not (out / 'SegmentationClass' / f'{name}.png').exists()
    assert summary['num_images'] == dict(train=12, val=4, test=3)
    assert summary['bytes_on_disk'] > 0
    assert summary['images_smaller_than_128'] > 0  # smaller than a crop


def test_masks_are_voc_p_pngs_with_valid_ids(toy):
    out, _ = toy
    for name in _split(out, 'train') + _split(out, 'val'):
        png = Image.open(out / 'SegmentationClass' / f'{name}.png')
        img = Image.open(out / 'JPEGImages' / f'{name}.jpg')
        assert png.mode == 'P' and img.mode == 'RGB'
        assert png.size == img.size
        assert 96 <= min(img.size) and max(img.size) <= 192
        pal = np.array(png.getpalette()).reshape(-1, 3)
        np.testing.assert_array_equal(pal[:6], TOY_PALETTE)
        ids = set(np.unique(np.array(png)).tolist())
        assert ids <= set(range(C + 1)) | {255}
        assert 255 in ids and 0 in ids  # ignore border and background


def test_cls_label_file_matches_masks(toy):
    out, _ = toy
    labels = load_cls_labels(str(out / 'cls_labels_onehot.npy'), C)
    train, val = _split(out, 'train'), _split(out, 'val')
    assert set(labels) == set(train) | set(val)  # official: train + val
    for name in train + val:
        mask = np.array(Image.open(out / 'SegmentationClass' / f'{name}.png'))
        np.testing.assert_array_equal(labels[name],
                                      cls_labels_from_mask(mask, C))
        assert labels[name].sum() >= 1  # every image has a foreground


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    kwargs = dict(num_train=3, num_val=2, num_test=1)
    make_toy_voc(str(tmp_path / 'a'), seed=7, **kwargs)
    make_toy_voc(str(tmp_path / 'b'), seed=7, **kwargs)
    make_toy_voc(str(tmp_path / 'c'), seed=8, **kwargs)
    files = sorted(
        os.path.relpath(os.path.join(r, f), tmp_path / 'a')
        for r, _, fs in os.walk(tmp_path / 'a') for f in fs)
    assert len(files) == 3 + 2 + 1 + 3 + 2 + 3 + 2  # jpg, png, txt, npy+json
    for rel in files:
        assert (tmp_path / 'a' / rel).read_bytes() == \
            (tmp_path / 'b' / rel).read_bytes(), rel
    jpg = 'JPEGImages/train_00000.jpg'
    assert (tmp_path / 'a' / jpg).read_bytes() != \
        (tmp_path / 'c' / jpg).read_bytes()


def test_refuses_to_mix_then_overwrites_cleanly(tmp_path):
    make_toy_voc(str(tmp_path), num_train=4, num_val=1, num_test=1)
    with pytest.raises(FileExistsError, match='overwrite'):
        make_toy_voc(str(tmp_path), num_train=2, num_val=1, num_test=1)
    make_toy_voc(
        str(tmp_path), num_train=2, num_val=1, num_test=1, overwrite=True)
    # no stale images from the bigger first run
    assert len(os.listdir(tmp_path / 'JPEGImages')) == 4
    assert len(load_cls_labels(str(tmp_path / 'cls_labels_onehot.npy'))) == 3


def test_bad_size_range(tmp_path):
    with pytest.raises(ValueError, match='size_range'):
        make_toy_voc(str(tmp_path), size_range=(200, 100))


def test_boat_water_cooccurrence_bias():
    rng = np.random.default_rng(0)
    boat = TOY_CLASSES.index('boat')
    specs = [sample_scene_spec(rng, 0.9, 0.05) for _ in range(3000)]
    with_boat = [k for c, k in specs if boat in c]
    without = [k for c, k in specs if boat not in c]
    p_water_boat = np.mean([k == 'water' for k in with_boat])
    p_water_other = np.mean([k == 'water' for k in without])
    assert 0.86 < p_water_boat < 0.94
    assert 0.02 < p_water_other < 0.08
    assert {k for _, k in specs} == set(BACKGROUND_KINDS)
    counts = [len(c) for c, _ in specs]
    assert min(counts) == 1 and max(counts) == 3


def test_scene_labels_match_drawn_objects():
    rng = np.random.default_rng(3)
    occluded = 0
    for _ in range(20):
        scene = make_scene(rng, 100, 140)
        assert scene['img'].shape == (100, 140, 3)
        assert scene['img'].dtype == np.uint8
        present = set(np.flatnonzero(
            cls_labels_from_mask(scene['label'], C)) + 1)
        assert present and present <= set(scene['drawn'])
        # the last drawn object is on top: it is always visible
        assert scene['drawn'][-1] in present
        occluded += scene['occluded_pixels'] > 0
    # objects overlap in a fair share of scenes (seeded, so exact)
    assert 3 <= occluded <= 15


def test_ignore_border_hand_computed():
    label = np.array([[0, 0, 0, 0],
                      [0, 0, 3, 3],
                      [0, 0, 3, 3]], np.uint8)
    expected = np.array([[0, 0, 255, 255],
                         [0, 255, 255, 255],
                         [0, 255, 255, 3]], np.uint8)
    np.testing.assert_array_equal(ignore_border(label), expected)
    assert label[1, 2] == 3  # input untouched


def test_voc_colormap_matches_voc():
    cmap = voc_colormap()
    assert cmap.shape == (256, 3)
    np.testing.assert_array_equal(cmap[:6], TOY_PALETTE)
    np.testing.assert_array_equal(cmap[20], [0, 64, 128])
    np.testing.assert_array_equal(cmap[255], [224, 224, 192])
