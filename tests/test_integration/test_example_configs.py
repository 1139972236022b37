# Copyright (c) OpenMMLab. All rights reserved.
"""configs/examples/: stock mmseg configs plus one part of the plugin each.
Every example trains 2 iterations on the toy set through tools/train.py,
run from a directory other than the repository root."""
import glob
import os.path as osp
import random
import re

import numpy as np
import pytest
from conftest import TOY_CONFIG
from mmengine.config import Config
from mmseg.registry import DATASETS, MODELS, TRANSFORMS
from stock_config_utils import (REPO, loop_options, run_train,
                                stock_toy_config)

import mmseg_dupl  # noqa: F401

EXAMPLES = osp.join(REPO, 'configs', 'examples')
GMM = osp.join(EXAMPLES, 'segformer_mit-b0_gmm-filtered-ce_ade20k-512x512.py')
OHEM = osp.join(EXAMPLES, 'segformer_mit-b0_ohem-cosine-thr_ade20k-512x512.py')
STRONG = osp.join(EXAMPLES, 'deeplabv3plus_r50-d8_strongaug_ade20k-512x512.py')
DEIT_S = osp.join(EXAMPLES, 'dupl_deit-s_voc.py')


def test_every_example_is_tested_here():
    assert sorted(glob.glob(osp.join(EXAMPLES, '*.py'))) == sorted(
        [GMM, OHEM, STRONG, DEIT_S])


def _train(cfg: Config, tmp_path) -> str:
    path = str(tmp_path / 'example.py')
    cfg.dump(path)
    work_dir = str(tmp_path / 'work')
    log = run_train(path, work_dir, loop_options(), cwd=str(tmp_path))
    assert re.search(r'Iter\(train\) \[2/2\]', log), log[-3000:]
    assert osp.isfile(osp.join(work_dir, 'iter_2.pth'))
    return log


def test_gmm_filtered_loss_replaces_the_stock_loss(toy_data_root, tmp_path):
    cfg = stock_toy_config(GMM, toy_data_root)
    loss = cfg.model.decode_head.loss_decode
    assert loss.type == 'GMMFilteredLoss' and 'use_sigmoid' not in loss
    hook, = cfg.custom_hooks
    assert hook.type == 'GMMNoiseFilterHook' and hook.start_iter == 64000
    hook.start_iter = 1  # off at iteration 0, on from iteration 1
    log = _train(cfg, tmp_path)
    ratios = re.findall(r'gmm\.removed: (\S+)', log)
    assert len(ratios) == 1 and 0 <= float(ratios[0]) <= 1
    assert not re.search(r'Iter\(train\) \[1/2\].*gmm\.removed', log)


def test_cosine_threshold_hook_anneals_the_ohem_threshold(
        toy_data_root, tmp_path):
    cfg = stock_toy_config(OHEM, toy_data_root)
    assert cfg.model.decode_head.sampler.type == 'OHEMPixelSampler'
    hook, = cfg.custom_hooks
    assert hook.target == 'decode_head.sampler.thresh'
    log = _train(cfg, tmp_path)
    values = [float(v) for v in re.findall(
        r'decode_head\.sampler\.thresh: (\S+)', log)]
    # logged at iterations 1 and 2 of 2: the start, then the end
    assert values == [0.9, 0.7]


def test_gmm_example_without_delete_fails_as_documented():
    cfg = Config.fromfile(GMM)
    cfg.model.decode_head.loss_decode.use_sigmoid = False  # a merged key
    with pytest.raises(TypeError, match='use_sigmoid'):
        MODELS.build(cfg.model.decode_head.loss_decode)


def test_strong_aug_example_keeps_crop_and_mask(toy_data_root, tmp_path):
    """The example's StrongAug leaves each crop its size and its mask
    aligned (flipped with it or not at all)."""
    cfg = stock_toy_config(STRONG, toy_data_root, crop=64)
    pipeline = cfg.train_dataloader.dataset.pipeline
    types = [t['type'] for t in pipeline]
    assert 'RandomFlip' not in types
    at = types.index('StrongAug')
    assert types[at - 1] == 'RandomCrop'
    strong_aug = TRANSFORMS.build(pipeline[at])
    cfg.train_dataloader.dataset.pipeline = pipeline[:at]  # up to the crop
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    random.seed(0)  # StrongAug's flip draws (python random): both outcomes
    np.random.seed(0)
    flips = set()
    for i in range(8):
        crop = dataset[i]
        img, seg = crop['img'].copy(), crop['gt_seg_map'].copy()
        out = strong_aug(crop)
        assert out['img'].shape == img.shape
        flipped = ('HorizontalFlip', None) in out['strong_aug_ops']
        np.testing.assert_array_equal(out['gt_seg_map'],
                                      seg[:, ::-1] if flipped else seg)
        flips.add(flipped)
    assert flips == {True, False}
    cfg.train_dataloader.dataset.pipeline = pipeline
    _train(cfg, tmp_path)


def test_dual_student_with_deit_small(toy_data_root, tmp_path):
    cfg = Config.fromfile(DEIT_S)
    student = cfg.model.student
    assert student.backbone.arch == 'deit-small'
    toy = Config.fromfile(TOY_CONFIG)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader] = toy[loader]
        cfg[loader].dataset.data_root = toy_data_root
    # the toy set's 5 classes; DeiT-S weights are not downloaded in tests
    cfg.model.num_classes = student.num_classes = 5
    student.decode_head.num_classes = 6
    student.backbone.init_cfg = None
    cfg.model.train_cfg = toy.model.train_cfg  # per-class targets of 5
    model = MODELS.build(cfg.model)
    assert model.student1.backbone.embed_dims == 384
    assert model.student1.classifier.in_channels == 384
    del model
    log = _train(cfg, tmp_path)
    assert 'loss_cls' in log
