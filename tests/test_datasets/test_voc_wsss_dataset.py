# Copyright (c) OpenMMLab. All rights reserved.
"""Tests for VOCWSSSDataset on tiny VOC-shaped folders."""
import logging
from unittest import mock

import numpy as np
import pytest
from PIL import Image

from mmseg.registry import DATASETS
from mmseg_dupl.datasets.cls_labels import write_cls_labels
from toy_voc_data import TOY_CLASSES, make_toy_voc
from mmseg_dupl.datasets.transforms.load_checked_image import \
    LoadCheckedImageFromFile  # noqa: F401 (registers the transform)
from mmseg_dupl.datasets.voc_wsss_dataset import VOCWSSSDataset

SPLIT = 'ImageSets/Segmentation/train_aug.txt'
# name -> mask (H=6, W=8): ids 0 bg, 1..20 classes, 255 ignore
MASKS = {
    '2007_000001': np.pad(np.full((2, 2), 1), ((2, 2), (3, 3))),
    '2007_000002': np.array([[15] * 4 + [255] * 2 + [20] * 2] * 6),
    '2007_000003': np.full((6, 8), 3),
}
EXPECTED = {'2007_000001': [1], '2007_000002': [15, 20], '2007_000003': [3]}


def _multi_hot(ids, num_classes=20):
    vec = np.zeros(num_classes, np.float32)
    vec[np.asarray(ids) - 1] = 1
    return vec


def save_mask(label, path):
    h, w = label.shape
    png = Image.frombytes('P', (w, h), label.astype(np.uint8).tobytes())
    png.putpalette(list(range(256)) * 3)
    png.save(path)


def make_voc(root, masks=MASKS, split=SPLIT, label_file=True):
    """Write a tiny VOC-layout tree; returns its root as str."""
    (root / 'JPEGImages').mkdir(parents=True, exist_ok=True)
    (root / 'SegmentationClassAug').mkdir(exist_ok=True)
    (root / split).parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name, mask in masks.items():
        img = rng.integers(0, 255, (*mask.shape, 3), dtype=np.uint8)
        Image.fromarray(img).save(root / 'JPEGImages' / f'{name}.jpg')
        save_mask(mask, root / 'SegmentationClassAug' / f'{name}.png')
    (root / split).write_text(''.join(n + '\n' for n in masks))
    if label_file:
        labels = {
            n: _multi_hot(EXPECTED[n]) if n in EXPECTED else np.zeros(20)
            for n in masks
        }
        write_cls_labels(labels, str(root / 'cls_labels_onehot.npy'))
    return str(root)


@pytest.fixture
def voc_root(tmp_path):
    return make_voc(tmp_path)


def _build(root, **kwargs):
    cfg = dict(type='VOCWSSSDataset', data_root=root, ann_file=SPLIT)
    cfg.update(kwargs)
    return DATASETS.build(cfg)


def test_data_infos_from_label_file(voc_root):
    ds = _build(voc_root, cls_label_file='cls_labels_onehot.npy')
    assert isinstance(ds, VOCWSSSDataset) and len(ds) == 3
    assert ds.metainfo['classes'][0] == 'background'
    assert len(ds.metainfo['classes']) == 21 == len(ds.metainfo['palette'])
    for idx, name in enumerate(MASKS):
        info = ds.get_data_info(idx)
        assert set(info) == {
            'img_path', 'seg_map_path', 'cls_labels', 'label_map',
            'reduce_zero_label', 'seg_fields', 'sample_idx',
            'seg_num_classes', 'seg_ignore_index'
        }
        assert (info['seg_num_classes'], info['seg_ignore_index']) == (21,
                                                                      255)
        assert info['img_path'] == f'{voc_root}/JPEGImages/{name}.jpg'
        assert info['seg_map_path'] == \
            f'{voc_root}/SegmentationClassAug/{name}.png'
        assert info['cls_labels'].dtype == np.float32
        np.testing.assert_array_equal(info['cls_labels'],
                                      _multi_hot(EXPECTED[name]))
        assert info['sample_idx'] == idx
        assert info['label_map'] is None
        assert info['reduce_zero_label'] is False
        assert info['seg_fields'] == []


def test_labels_derived_from_masks_equal_label_file(voc_root):
    from_file = _build(voc_root, cls_label_file='cls_labels_onehot.npy')
    from_masks = _build(voc_root)
    for i in range(3):
        np.testing.assert_array_equal(
            from_masks.get_data_info(i)['cls_labels'],
            from_file.get_data_info(i)['cls_labels'])


def test_absolute_label_file_and_direct_construction(voc_root):
    ds = VOCWSSSDataset(
        ann_file=SPLIT,
        data_root=voc_root,
        cls_label_file=f'{voc_root}/cls_labels_onehot.npy')
    np.testing.assert_array_equal(ds.get_data_info(1)['cls_labels'],
                                  _multi_hot([15, 20]))


def test_no_data_info_carries_a_mask_array(voc_root):
    for kwargs in (dict(), dict(test_mode=True),
                   dict(cls_label_file='cls_labels_onehot.npy')):
        ds = _build(voc_root, **kwargs)
        for i in range(len(ds)):
            info = ds.get_data_info(i)
            assert 'gt_seg_map' not in info
            arrays = [v for v in info.values() if isinstance(v, np.ndarray)]
            assert all(a.ndim == 1 for a in arrays)


def test_split_without_masks(voc_root):
    # VOC test: no masks, no labels -> no cls_labels, no seg_map_path
    ds = _build(voc_root, with_seg_map=False, test_mode=True)
    info = ds.get_data_info(0)
    assert 'seg_map_path' not in info and 'cls_labels' not in info
    # with a label file listing the images, labels are still attached
    ds = _build(
        voc_root,
        with_seg_map=False,
        test_mode=True,
        cls_label_file='cls_labels_onehot.npy')
    assert 'seg_map_path' not in ds.get_data_info(0)
    assert ds.get_data_info(0)['cls_labels'].shape == (20, )


def test_training_without_any_label_source_raises(voc_root):
    with pytest.raises(ValueError, match='training needs image-level'):
        _build(voc_root, with_seg_map=False)


def test_pipeline_keeps_cls_labels(voc_root):
    ds = _build(
        voc_root,
        cls_label_file='cls_labels_onehot.npy',
        pipeline=[dict(type='LoadCheckedImageFromFile')])
    results = ds[1]
    assert results['img'].shape == (6, 8, 3)
    np.testing.assert_array_equal(results['cls_labels'],
                                  _multi_hot([15, 20]))
    assert 'gt_seg_map' not in results


def test_indices_and_no_serialization(voc_root):
    ds = _build(
        voc_root,
        cls_label_file='cls_labels_onehot.npy',
        indices=[2],
        serialize_data=False)
    assert len(ds) == 1
    info = ds.get_data_info(0)
    assert info['img_path'].endswith('2007_000003.jpg')
    np.testing.assert_array_equal(info['cls_labels'], _multi_hot([3]))


def test_reduce_zero_label_refused(voc_root):
    with pytest.raises(ValueError, match='reduce_zero_label'):
        _build(voc_root, reduce_zero_label=True)


def test_missing_split_file_named(voc_root):
    with pytest.raises(FileNotFoundError, match='nope.txt'):
        _build(voc_root, ann_file='ImageSets/Segmentation/nope.txt')


def test_empty_split_file(voc_root, tmp_path):
    (tmp_path / 'empty.txt').write_text('\n\n')
    with pytest.raises(ValueError, match='empty.txt.*no images'):
        _build(voc_root, ann_file=str(tmp_path / 'empty.txt'))


def test_duplicated_split_entries_are_warned_about(voc_root, tmp_path):
    # the probe of issue 23: accepted without a word, and in val such an
    # image counts twice in mIoU
    split = tmp_path / 'dup.txt'
    split.write_text('2007_000001\n2007_000002\n\n2007_000001\n'
                     '2007_000003\n2007_000001\n')
    module = 'mmseg_dupl.datasets.voc_wsss_dataset'
    with mock.patch(f'{module}.print_log') as log:
        ds = _build(voc_root, ann_file=str(split), test_mode=True)
    assert len(ds) == 5  # kept: a deliberate oversampling is possible
    message, = [c.args[0] for c in log.call_args_list]
    assert str(split) in message
    assert '2007_000001 (lines 1, 4, 6)' in message and '(1 names)' in message
    assert '2007_000002' not in message
    assert log.call_args.args[2] == logging.WARNING
    with mock.patch(f'{module}.print_log') as log:
        _build(voc_root, test_mode=True)
    assert not log.called  # no duplicates, no warning


def test_toy_dataset_with_metainfo_override(tmp_path):
    make_toy_voc(str(tmp_path), num_train=6, num_val=2, num_test=2)
    meta = dict(classes=TOY_CLASSES)  # no palette: VOC's first entries
    train = _build(
        str(tmp_path),
        ann_file='ImageSets/Segmentation/train.txt',
        data_prefix=dict(
            img_path='JPEGImages', seg_map_path='SegmentationClass'),
        cls_label_file='cls_labels_onehot.npy',
        metainfo=meta)
    assert train.metainfo['classes'] == TOY_CLASSES
    assert train.metainfo['palette'] == VOCWSSSDataset.METAINFO[
        'palette'][:len(TOY_CLASSES)]
    derived = _build(
        str(tmp_path),
        ann_file='ImageSets/Segmentation/train.txt',
        data_prefix=dict(
            img_path='JPEGImages', seg_map_path='SegmentationClass'),
        metainfo=meta)
    for i in range(len(train)):
        vec = train.get_data_info(i)['cls_labels']
        assert vec.shape == (5, ) and vec.sum() >= 1
        np.testing.assert_array_equal(vec,
                                      derived.get_data_info(i)['cls_labels'])
    test = _build(
        str(tmp_path),
        ann_file='ImageSets/Segmentation/test.txt',
        with_seg_map=False,
        test_mode=True,
        metainfo=meta)
    assert len(test) == 2 and 'cls_labels' not in test.get_data_info(0)


def test_custom_classes_not_in_voc_are_accepted(voc_root):
    # mmseg's PascalVOCDataset would demand a subset of VOC's names.
    meta = dict(classes=['background'] + [f'c{i}' for i in range(20)])
    ds = _build(voc_root, metainfo=meta)
    assert ds.metainfo['classes'][1] == 'c0'
    assert ds.get_data_info(0)['label_map'] is None
    assert ds.metainfo['palette'] == VOCWSSSDataset.METAINFO['palette']


def test_palette_for_overridden_classes(voc_root):
    many = ['background'] + [f'c{i}' for i in range(29)]
    ds = _build(voc_root, metainfo=dict(classes=many), with_seg_map=False,
                test_mode=True)
    palette = ds.metainfo['palette']
    assert len(palette) == 30
    assert palette[:21] == VOCWSSSDataset.METAINFO['palette']
    assert palette[21] == [128, 64, 128]  # VOC colour map entry 21
    # an explicit palette of the wrong length is the user's error
    with pytest.raises(ValueError, match='palette'):
        _build(voc_root, metainfo=dict(classes=many, palette=[[0, 0, 0]]),
               with_seg_map=False, test_mode=True)
