# Copyright (c) OpenMMLab. All rights reserved.
"""Shared test helpers: a tiny DuPL segmentor config and multi-branch
batches as the model sees them in training."""
import copy

import numpy as np
import pytest
import torch
from mmseg.structures import SegDataSample

NUM_CLASSES = 3
EMBED = 16


def tiny_student_cfg(num_classes: int = NUM_CLASSES) -> dict:
    """A 4-layer, 16-d ViT student with patch 8 (no pretrained weights)."""
    return dict(
        type='DuPLStudent',
        num_classes=num_classes,
        in_channels=EMBED,
        backbone=dict(
            type='DuPLVisionTransformer',
            arch=dict(
                embed_dims=EMBED,
                num_layers=4,
                num_heads=2,
                feedforward_channels=32),
            img_size=32,
            patch_size=8,
            out_indices=(1, 3),
            init_cfg=None),
        decode_head=dict(
            type='LargeFOVHead',
            in_channels=EMBED,
            channels=8,
            dilation=1,
            num_classes=num_classes + 1))


def tiny_model_cfg(pseudo_labeler=None, **train_cfg) -> dict:
    """The tiny segmentor; ``train_cfg`` keys override its schedule, and
    ``pseudo_labeler`` replaces its fast labeller (PAR of 2 dilations x 2
    iterations, GMM fits from 10 pixels)."""
    cfg = dict(
        type='DualStudentSegmentor',
        num_classes=NUM_CLASSES,
        student=tiny_student_cfg(),
        data_preprocessor=dict(
            type='MultiBranchSegDataPreProcessor',
            data_preprocessor=dict(
                type='SegDataPreProcessor',
                mean=[123.675, 116.28, 103.53],
                std=[58.395, 57.12, 57.375],
                bgr_to_rgb=True,
                pad_val=0,
                seg_pad_val=255)),
        train_cfg=dict(
            # Phase A: 0-1, B: seg labels from 2 (weighted from 3), C: GMM
            # filter from 5, consistency from 6; tau 0.7 -> 0.55 by 11.
            phases=dict(cam=2, gmm=5, end=12)),
        pseudo_labeler=pseudo_labeler or dict(
            type='DuPLPseudoLabeler',
            gmm=dict(min_pixels=10),
            par=dict(dilations=(1, 2), num_iter=2)))
    cfg['train_cfg'].update(train_cfg)
    return cfg


def hflip_scale(w: int, s: float) -> np.ndarray:
    """weak -> strong homography of DuPL's strong view (flip, then x s)."""
    flip = np.array([[-1, 0, w], [0, 1, 0], [0, 0, 1]], np.float32)
    scale = np.diag([s, s, 1]).astype(np.float32)
    return scale @ flip


def make_batch(batch: int = 2, size: int = 32, seed: int = 0) -> dict:
    """Preprocessed multi-branch inputs and samples, as the model sees
    them in training (no pixel labels anywhere)."""
    g = torch.Generator().manual_seed(seed)
    strong_size = int(size * 0.75)
    weak = torch.randn(batch, 3, size, size, generator=g)
    strong = torch.randn(batch, 3, strong_size, strong_size, generator=g)
    samples = {'weak': [], 'strong': []}
    for i in range(batch):
        cls = np.zeros(NUM_CLASSES, np.float32)
        cls[i % NUM_CLASSES] = 1
        cls[(i + 1) % NUM_CLASSES] = 1
        box = np.array([0, size, 0, size - 4 * i], np.int64)
        for branch, h in (('weak', np.eye(3, dtype=np.float32)),
                          ('strong', hflip_scale(size, 0.75))):
            samples[branch].append(
                SegDataSample(
                    metainfo=dict(
                        cls_labels=cls,
                        img_box=box,
                        homography_matrix=h,
                        img_path=f'img{i}.jpg',
                        ori_shape=(size, size),
                        img_shape=(size, size))))
    return dict(inputs={'weak': weak, 'strong': strong}, data_samples=samples)


def init_weights_quietly(model) -> None:
    """``model.init_weights()`` without its log line per parameter."""
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel('WARNING')
    try:
        model.init_weights()
    finally:
        logger.setLevel(level)


def set_iter(model, n: int) -> None:
    """The run-time state of iteration ``n`` for a model outside a runner
    (what the schedule hooks write inside one)."""
    model.follow_schedule(n)


@pytest.fixture
def model_cfg():
    return copy.deepcopy(tiny_model_cfg())
