# Copyright (c) OpenMMLab. All rights reserved.
import random

import numpy as np
import pytest
import torch
from mmcv.transforms import Compose
from mmengine.dataset import pseudo_collate

from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
# registration side effects of the pipeline pieces
from mmseg_dupl.datasets.transforms import (  # noqa: F401
    multi_branch, pack_wsss_inputs, random_crop_with_box, random_rescale,
    strong_aug, toco_color_aug)
from mmseg_dupl.models.data_preprocessors import \
    multi_branch_seg_data_preprocessor as mbdp

MultiBranchSegDataPreProcessor = mbdp.MultiBranchSegDataPreProcessor

MEAN = [123.675, 116.28, 103.53]
STD = [58.395, 57.12, 57.375]


def _inner(**kwargs):
    cfg = dict(type='SegDataPreProcessor', mean=MEAN, std=STD,
               bgr_to_rgb=True, size=(448, 448), pad_val=0, seg_pad_val=255)
    cfg.update(kwargs)
    return cfg


def _train_pipeline():
    """The DuPL training pipeline of docs/architecture.md (no loading)."""
    return Compose([
        dict(type='RandomRescale', ratio_range=(0.5, 2.0)),
        dict(type='RandomFlip', prob=0.5),
        dict(type='RandomCropWithValidBox', crop_size=448),
        dict(type='ToCoColorAug'),
        dict(
            type='MultiBranch',
            branch_field=['weak', 'strong'],
            weak=[dict(type='PackWSSSInputs', allow_gt_seg_map=False)],
            strong=[
                dict(type='StrongAug'),
                dict(type='PackWSSSInputs', allow_gt_seg_map=False)
            ])
    ])


def _sample(seed, h=200, w=300):
    rng = np.random.RandomState(seed)
    return dict(
        img=rng.randint(0, 256, (h, w, 3), np.uint8),
        img_path=f'img_{seed}.jpg',
        ori_shape=(h, w),
        img_shape=(h, w),
        cls_labels=np.eye(20, dtype=np.float32)[seed])


def _batch(n=2):
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    pipeline = _train_pipeline()
    return pseudo_collate([pipeline(_sample(i)) for i in range(n)])


def test_whole_training_chain():
    batch = _batch()
    weak_in = [x.clone() for x in batch['inputs']['weak']]
    pre = MODELS.build(
        dict(type='MultiBranchSegDataPreProcessor',
             data_preprocessor=_inner()))
    out = pre(batch, training=True)
    assert out['inputs']['weak'].shape == (2, 3, 448, 448)
    assert out['inputs']['strong'].shape == (2, 3, 336, 336)
    assert out['inputs']['weak'].dtype == torch.float32
    for branch in ('weak', 'strong'):
        samples = out['data_samples'][branch]
        assert len(samples) == 2
        for i, s in enumerate(samples):
            assert isinstance(s, SegDataSample)
            np.testing.assert_array_equal(s.cls_labels, np.eye(20)[i])
            assert s.img_box.shape == (4, ) and s.img_box.dtype == np.int64
            assert s.homography_matrix.shape == (3, 3)
            assert s.img_path == f'img_{i}.jpg'
            assert 'gt_sem_seg' not in s
    for s in out['data_samples']['strong']:
        np.testing.assert_allclose(
            s.homography_matrix, [[-0.75, 0, 336], [0, 0.75, 0], [0, 0, 1]])
        assert tuple(s.img_shape) == (336, 336)
    # normalised RGB of the packed BGR weak view
    mean = torch.tensor(MEAN).view(3, 1, 1)
    std = torch.tensor(STD).view(3, 1, 1)
    expected = (weak_in[0][[2, 1, 0]].float() - mean) / std
    torch.testing.assert_close(out['inputs']['weak'][0], expected)


def test_inner_size_is_not_applied_to_strong_and_is_restored():
    pre = MultiBranchSegDataPreProcessor(data_preprocessor=_inner())
    out = pre(_batch(), training=True)
    assert out['inputs']['strong'].shape[-2:] == (336, 336)
    for s in out['data_samples']['strong']:
        assert s.padding_size == (0, 0, 0, 0)
    assert pre.data_preprocessor.size == (448, 448)
    assert pre.data_preprocessor.size_divisor is None


def test_branch_sizes_pad_bottom_right():
    pre = MultiBranchSegDataPreProcessor(
        data_preprocessor=_inner(), branch_sizes=dict(strong=(340, 344)))
    out = pre(_batch(), training=True)
    strong = out['inputs']['strong']
    assert strong.shape == (2, 3, 340, 344)
    assert out['data_samples']['strong'][0].padding_size == (0, 8, 0, 4)
    # padding is pad_val (0) after normalisation
    assert (strong[:, :, 336:] == 0).all() and (strong[..., 336:] == 0).all()


def test_per_sample_list_and_none_filtering():
    t = torch.zeros(3, 4, 4, dtype=torch.uint8)
    data = dict(
        inputs=[dict(a=t, b=None), dict(a=t + 1, b=None)],
        data_samples=[
            dict(a=SegDataSample(), b=None),
            dict(a=SegDataSample(), b=None)
        ])
    pre = MultiBranchSegDataPreProcessor(
        data_preprocessor=dict(type='SegDataPreProcessor', size=(4, 4)))
    out = pre(data, training=True)
    assert set(out['inputs']) == {'a'}
    assert out['inputs']['a'].shape == (2, 3, 4, 4)
    assert (out['inputs']['a'][1] == 1).all()


def test_eval_is_pass_through():
    pre = MultiBranchSegDataPreProcessor(
        data_preprocessor=_inner(size=None, size_divisor=None))
    inner = MODELS.build(_inner(size=None, size_divisor=None))
    imgs = [torch.randint(0, 256, (3, 5, 6), dtype=torch.uint8)
            for _ in range(2)]
    data = dict(inputs=imgs, data_samples=[SegDataSample(), SegDataSample()])
    out = pre(dict(data), training=False)
    ref = inner(dict(data), training=False)
    assert out['inputs'].shape == (2, 3, 5, 6)
    torch.testing.assert_close(out['inputs'], ref['inputs'])


def test_training_needs_multi_branch_batch():
    pre = MultiBranchSegDataPreProcessor(data_preprocessor=_inner())
    data = dict(inputs={'weak': [torch.zeros(3, 2, 2)]},
                data_samples=[SegDataSample()])
    with pytest.raises(TypeError, match='MultiBranch'):
        pre(data, training=True)


def test_device_is_forwarded():
    pre = MultiBranchSegDataPreProcessor(data_preprocessor=_inner())
    assert pre.device == torch.device('cpu')
    pre.to('meta')
    assert pre.device == torch.device('meta')
    assert pre.data_preprocessor.mean.device == torch.device('meta')
    pre = MultiBranchSegDataPreProcessor(data_preprocessor=_inner())
    pre.cpu()
    assert pre.data_preprocessor.device == torch.device('cpu')


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_cuda():
    pre = MultiBranchSegDataPreProcessor(data_preprocessor=_inner()).cuda()
    out = pre(_batch(), training=True)
    assert out['inputs']['weak'].is_cuda and out['inputs']['strong'].is_cuda


@pytest.mark.parametrize('inner_size', [None, (8, 8)])
def test_plain_batch_in_training_mode(inner_size):
    """mmseg's benchmark.py preprocesses test batches with training=True:
    a plain batch is stacked as one branch (the inner size if it has one,
    else each image's own size) and returned in the inner format."""
    pre = MultiBranchSegDataPreProcessor(
        data_preprocessor=_inner(size=inner_size))
    inner = MODELS.build(
        _inner(size=inner_size, size_divisor=None if inner_size else 1))
    imgs = [torch.randint(0, 256, (3, 5, 6), dtype=torch.uint8)
            for _ in range(2)]
    data = dict(inputs=imgs, data_samples=[SegDataSample(), SegDataSample()])
    out = pre(dict(data), training=True)
    ref = inner(dict(data), training=True)
    assert isinstance(out['inputs'], torch.Tensor)
    assert out['inputs'].shape == (2, 3) + (inner_size or (5, 6))
    torch.testing.assert_close(out['inputs'], ref['inputs'])
    assert isinstance(out['data_samples'], list)
    # the wrapped preprocessor's own padding rule is restored
    assert pre.data_preprocessor.size == inner_size
