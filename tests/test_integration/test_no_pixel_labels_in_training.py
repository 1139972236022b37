# Copyright (c) OpenMMLab. All rights reserved.
"""Training never sees pixel-level ground truth (the WSSS contract)."""
import glob
import os.path as osp
import random
import shutil

import numpy as np
import torch
from mmengine.config import Config
from mmseg.registry import DATASETS

import mmseg_dupl  # noqa: F401

TOY_CONFIG = osp.join(
    osp.dirname(__file__), '..', '..', 'configs', 'dupl_vit-tiny_toy.py')


def _training_samples(data_root: str, count: int = 12) -> list:
    """The first ``count`` training samples, with every RNG seeded."""
    cfg = Config.fromfile(TOY_CONFIG)
    dataset_cfg = cfg.train_dataloader.dataset
    dataset_cfg.data_root = data_root
    dataset = DATASETS.build(dataset_cfg)
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    return [dataset[i] for i in range(count)]


def _fingerprint(sample: dict) -> list:
    """Bytes of every tensor and metainfo array of both branches."""
    parts = []
    for branch in ('weak', 'strong'):
        parts.append(sample['inputs'][branch].numpy().tobytes())
        meta = sample['data_samples'][branch].metainfo
        for key in sorted(meta):
            parts.append(key.encode() + repr(meta[key]).encode())
    return parts


def test_training_batches_carry_no_masks_and_ignore_mask_files(
        toy_data_root, tmp_path):
    root = str(tmp_path / 'toy')
    shutil.copytree(toy_data_root, root)
    clean = _training_samples(root)
    for sample in clean:
        for branch in ('weak', 'strong'):
            data_sample = sample['data_samples'][branch]
            assert 'gt_sem_seg' not in data_sample
            assert 'cls_labels' in data_sample.metainfo
        assert 'img_box' in sample['data_samples']['weak'].metainfo

    masks = glob.glob(osp.join(root, 'SegmentationClass', '*.png'))
    assert masks, 'the fixture must have masks for this test to mean much'
    rng = np.random.default_rng(0)
    for path in masks:
        with open(path, 'wb') as f:
            f.write(rng.integers(0, 256, 500, dtype=np.uint8).tobytes())
    garbage = _training_samples(root)
    for a, b in zip(clean, garbage):
        assert _fingerprint(a) == _fingerprint(b)
