# Copyright (c) OpenMMLab. All rights reserved.
import numpy as np
import pytest
import torch

from mmseg.registry import TRANSFORMS
from mmseg.structures import SegDataSample
from mmseg_dupl.datasets.transforms.pack_wsss_inputs import (WSSS_META_KEYS,
                                                             PackWSSSInputs)


def _results(**extra):
    results = dict(
        img=np.random.RandomState(0).randint(0, 256, (6, 8, 3), np.uint8),
        img_path='JPEGImages/a.jpg',
        ori_shape=(6, 8),
        img_shape=(6, 8),
        cls_labels=np.array([0, 1, 0], np.float32),
        img_box=np.array([1, 6, 0, 8], np.int64))
    results.update(extra)
    return results


def test_packs_wsss_metainfo():
    H = np.diag([-1., 1., 1.]).astype(np.float32)
    ops = [('Equalize', None), ('HorizontalFlip', None)]
    packed = TRANSFORMS.build(dict(type='PackWSSSInputs'))(
        _results(homography_matrix=H, strong_aug_ops=ops))
    assert packed['inputs'].shape == (3, 6, 8)
    assert packed['inputs'].dtype == torch.uint8
    sample = packed['data_samples']
    assert isinstance(sample, SegDataSample)
    np.testing.assert_array_equal(sample.cls_labels, [0, 1, 0])
    assert sample.cls_labels.dtype == np.float32
    np.testing.assert_array_equal(sample.img_box, [1, 6, 0, 8])
    np.testing.assert_array_equal(sample.homography_matrix, H)
    assert sample.strong_aug_ops == ops
    assert sample.img_path == 'JPEGImages/a.jpg'
    assert 'gt_sem_seg' not in sample
    # keys absent from results are not packed
    assert 'flip' not in sample.metainfo and 'pad_shape' not in sample


def test_identity_homography_by_default():
    sample = PackWSSSInputs()(_results())['data_samples']
    np.testing.assert_array_equal(sample.homography_matrix, np.eye(3))
    assert sample.homography_matrix.dtype == np.float32
    sample = PackWSSSInputs(identity_homography=False)(
        _results())['data_samples']
    assert 'homography_matrix' not in sample.metainfo


def test_gt_seg_map_guard():
    seg = np.zeros((6, 8), np.uint8)
    with pytest.raises(ValueError, match='JPEGImages/a.jpg'):
        PackWSSSInputs(allow_gt_seg_map=False)(_results(gt_seg_map=seg))
    # allowed at val/test time: packed as PackSegInputs does
    sample = PackWSSSInputs()(_results(gt_seg_map=seg))['data_samples']
    assert sample.gt_sem_seg.data.shape == (1, 6, 8)


def test_meta_keys_and_repr():
    assert set(WSSS_META_KEYS) >= {
        'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'flip',
        'cls_labels', 'img_box', 'homography_matrix', 'strong_aug_ops'
    }
    t = PackWSSSInputs(meta_keys=('img_path', ), allow_gt_seg_map=False)
    assert repr(t) == ("PackWSSSInputs(meta_keys=('img_path',), "
                       'allow_gt_seg_map=False, identity_homography=True)')
    sample = t(_results())['data_samples']
    assert set(sample.metainfo) == {'img_path'}
