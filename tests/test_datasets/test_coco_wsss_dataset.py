# Copyright (c) OpenMMLab. All rights reserved.
"""Tests for COCOWSSSDataset on a tiny ToCo/DuPL-layout COCO folder."""
import numpy as np
import pytest
from PIL import Image

from mmseg.registry import DATASETS
from mmseg_dupl.datasets.cls_labels import write_cls_labels
from mmseg_dupl.datasets.coco_wsss_dataset import (COCO_CLASSES,
                                                   COCOWSSSDataset)
from mmseg_dupl.datasets.transforms.load_checked_image import \
    LoadCheckedImageFromFile  # noqa: F401 (registers the transform)

TRAIN = {  # name -> class ids drawn in the mask
    'COCO_train2014_000000000009': [1, 80],
    'COCO_train2014_000000000025': [25],
}
VAL = {'COCO_val2014_000000000042': [17]}


def _save_mask(label, path):
    h, w = label.shape
    png = Image.frombytes('P', (w, h), label.astype(np.uint8).tobytes())
    png.putpalette(list(range(256)) * 3)
    png.save(path)


def _write_split(root, subset, items, list_name, gray=()):
    img_dir = root / 'JPEGImages' / subset
    seg_dir = root / 'SegmentationClass' / subset
    img_dir.mkdir(parents=True, exist_ok=True)
    seg_dir.mkdir(parents=True, exist_ok=True)
    for name, ids in items.items():
        mask = np.zeros((12, 16), np.uint8)
        for k, cls_id in enumerate(ids):
            mask[2:6, 2 + 6 * k:6 + 6 * k] = cls_id
        mask[0, :] = 255
        _save_mask(mask, seg_dir / f'{name}.png')
        shape = (12, 16) if name in gray else (12, 16, 3)
        pix = np.random.default_rng(len(name)).integers(0, 255, shape,
                                                        np.uint8)
        Image.fromarray(pix).save(img_dir / f'{name}.jpg')
    (root / list_name).write_text(''.join(n + '\n' for n in items))


@pytest.fixture
def coco_root(tmp_path):
    gray = ('COCO_train2014_000000000025', )  # COCO has grayscale JPEGs
    _write_split(tmp_path, 'train2014', TRAIN, 'train.txt', gray)
    _write_split(tmp_path, 'val2014', VAL, 'val_part.txt')
    return str(tmp_path)


def _expected(ids):
    vec = np.zeros(80, np.float32)
    vec[np.asarray(ids) - 1] = 1
    return vec


def test_metainfo():
    meta = COCOWSSSDataset.METAINFO
    assert len(COCO_CLASSES) == 80 and len(set(COCO_CLASSES)) == 80
    assert meta['classes'][0] == 'background'
    assert meta['classes'][1] == 'person'
    assert meta['classes'][80] == 'toothbrush'
    assert meta['classes'][COCO_CLASSES.index('bus') + 1] == 'bus'
    assert len(meta['palette']) == 81
    assert meta['palette'][:3] == [[0, 0, 0], [128, 0, 0], [0, 128, 0]]


def test_train_split_with_default_prefixes(coco_root):
    ds = DATASETS.build(
        dict(type='COCOWSSSDataset', data_root=coco_root,
             ann_file='train.txt'))
    assert isinstance(ds, COCOWSSSDataset) and len(ds) == 2
    for i, (name, ids) in enumerate(TRAIN.items()):
        info = ds.get_data_info(i)
        assert info['img_path'] == \
            f'{coco_root}/JPEGImages/train2014/{name}.jpg'
        assert info['seg_map_path'] == \
            f'{coco_root}/SegmentationClass/train2014/{name}.png'
        np.testing.assert_array_equal(info['cls_labels'], _expected(ids))


def test_val_part_and_label_file(coco_root):
    write_cls_labels({n: _expected(v)
                      for n, v in VAL.items()},
                     f'{coco_root}/cls_labels_onehot.npy')
    ds = DATASETS.build(
        dict(
            type='COCOWSSSDataset',
            data_root=coco_root,
            ann_file='val_part.txt',
            data_prefix=dict(
                img_path='JPEGImages/val2014',
                seg_map_path='SegmentationClass/val2014'),
            cls_label_file='cls_labels_onehot.npy',
            test_mode=True))
    np.testing.assert_array_equal(ds.get_data_info(0)['cls_labels'],
                                  _expected([17]))


def test_id_above_80_is_named(coco_root):
    seg = f'{coco_root}/SegmentationClass/train2014'
    _save_mask(np.full((4, 4), 81, np.uint8),
               f'{seg}/COCO_train2014_000000000009.png')
    with pytest.raises(ValueError,
                       match=r'000000000009\.png.*\[81\]'):
        COCOWSSSDataset(ann_file='train.txt', data_root=coco_root)


def test_voc_label_file_rejected_for_coco(coco_root):
    write_cls_labels({n: np.eye(20)[0]
                      for n in TRAIN}, f'{coco_root}/voc_labels.npy')
    with pytest.raises(ValueError, match='length 20, expected 80'):
        COCOWSSSDataset(
            ann_file='train.txt',
            data_root=coco_root,
            cls_label_file='voc_labels.npy')


def test_grayscale_coco_image_loads_as_bgr(coco_root):
    ds = COCOWSSSDataset(
        ann_file='train.txt',
        data_root=coco_root,
        pipeline=[dict(type='LoadCheckedImageFromFile')])
    img = ds[1]['img']
    assert img.shape == (12, 16, 3)
    np.testing.assert_array_equal(img[..., 0], img[..., 2])
    np.testing.assert_array_equal(ds[1]['cls_labels'], _expected([25]))
