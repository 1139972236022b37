# Copyright (c) OpenMMLab. All rights reserved.
import random

import numpy as np
import pytest
from mmcv.transforms import BaseTransform

from mmseg.registry import TRANSFORMS
from mmseg.structures import SegDataSample
from mmseg_dupl.datasets.transforms.multi_branch import MultiBranch
from mmseg_dupl.datasets.transforms.pack_wsss_inputs import \
    PackWSSSInputs  # noqa: F401
from mmseg_dupl.datasets.transforms.strong_aug import StrongAug  # noqa: F401


@TRANSFORMS.register_module(force=True)
class _DropSample(BaseTransform):
    """Test double: a branch that rejects the sample."""

    def transform(self, results):
        return None


@TRANSFORMS.register_module(force=True)
class _MarkResults(BaseTransform):
    """Test double: mutates its copy of the results in place."""

    def transform(self, results):
        results['img'][...] = 0
        results['cls_labels'][...] = -1
        return dict(inputs=results['img'], data_samples='marked')


def _results():
    rng = np.random.RandomState(0)
    return dict(
        img=rng.randint(1, 256, (8, 12, 3), np.uint8),
        img_shape=(8, 12),
        cls_labels=np.array([1, 0], np.float32),
        img_box=np.array([0, 8, 0, 12], np.int64))


def _weak_strong(**kwargs):
    return MultiBranch(
        branch_field=['weak', 'strong'],
        weak=[dict(type='PackWSSSInputs', allow_gt_seg_map=False)],
        strong=[
            dict(type='StrongAug', **kwargs),
            dict(type='PackWSSSInputs', allow_gt_seg_map=False)
        ])


def test_weak_strong_branches():
    random.seed(0)
    results = _results()
    img = results['img'].copy()
    out = _weak_strong()(results)
    assert set(out) == {'inputs', 'data_samples'}
    assert out['inputs']['weak'].shape == (3, 8, 12)
    assert out['inputs']['strong'].shape == (3, 6, 9)
    weak, strong = out['data_samples']['weak'], out['data_samples']['strong']
    assert isinstance(weak, SegDataSample)
    np.testing.assert_array_equal(weak.homography_matrix, np.eye(3))
    np.testing.assert_allclose(
        strong.homography_matrix,
        [[-0.75, 0, 9], [0, 0.75, 0], [0, 0, 1]])
    assert len(strong.strong_aug_ops) == 7
    assert 'strong_aug_ops' not in weak.metainfo
    for sample in (weak, strong):
        np.testing.assert_array_equal(sample.cls_labels, [1, 0])
        np.testing.assert_array_equal(sample.img_box, [0, 8, 0, 12])
    # the weak branch sees the untouched image (CHW of the BGR input)
    np.testing.assert_array_equal(out['inputs']['weak'].numpy(),
                                  img.transpose(2, 0, 1))
    np.testing.assert_array_equal(results['img'], img)


def test_branches_get_deep_copies():
    results = _results()
    out = MultiBranch(
        branch_field=['a', 'b'],
        a=[dict(type='_MarkResults')],
        b=[dict(type='PackWSSSInputs')])(results)
    assert out['data_samples']['a'] == 'marked'
    assert (out['inputs']['a'] == 0).all()
    assert (out['inputs']['b'] > 0).all()
    np.testing.assert_array_equal(
        out['data_samples']['b'].cls_labels, [1, 0])
    assert (results['img'] > 0).all()


def test_missing_and_rejecting_branches():
    out = MultiBranch(
        branch_field=['weak', 'unused'],
        weak=[dict(type='PackWSSSInputs')])(_results())
    assert out['inputs']['unused'] is None
    assert out['data_samples']['unused'] is None
    assert MultiBranch(
        branch_field=['weak', 'strong'],
        weak=[dict(type='PackWSSSInputs')],
        strong=[dict(type='_DropSample')])(_results()) is None


def test_registry_bad_args_and_repr():
    t = TRANSFORMS.build(
        dict(type='MultiBranch', branch_field=['weak'],
             weak=[dict(type='PackWSSSInputs')]))
    assert isinstance(t, MultiBranch)
    assert repr(_weak_strong()) == (
        "MultiBranch(branch_field=['weak', 'strong'], "
        "branch_pipelines=['weak', 'strong'])")
    with pytest.raises(ValueError, match='strong'):
        MultiBranch(branch_field=['weak'], strong=[])
