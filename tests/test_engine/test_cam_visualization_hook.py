# Copyright (c) OpenMMLab. All rights reserved.
"""CAMVisualizationHook against a fake model that keeps ``last_visuals``:
the drawing, the request flag, Mock runners and a real Runner writing
local PNGs and TensorBoard events."""
import glob
import os.path as osp
import uuid
from unittest.mock import Mock

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.model import BaseModel
from mmengine.registry import DATASETS, MODEL_WRAPPERS
from mmengine.runner import Runner
from mmseg.registry import HOOKS
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import \
    EventAccumulator
from torch.utils.data import Dataset

from mmseg_dupl.engine.hooks.cam_visualization_hook import (
    CAMVisualizationHook, draw_dupl_visuals)

H = W = 8
C = 3
PALETTE = [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0]]


def fake_visuals(n, with_labels=True, with_noisy=True):
    """What the segmentor keeps: class 0 present with CAM 1 on the left
    half; the absent class 1 has CAM 1 everywhere (must not be drawn)."""
    img = torch.full((n, H, W, 3), 100, dtype=torch.uint8)
    cams = torch.zeros(n, C, H, W)
    cams[:, 0, :, :W // 2] = 1.
    cams[:, 1] = 1.
    cls_labels = torch.tensor([[1., 0., 0.]]).repeat(n, 1)
    vis = dict(img=img, cams=[cams, cams * 0.], cls_labels=cls_labels)
    if with_labels:
        label = torch.zeros(n, H, W, dtype=torch.long)
        label[:, :, :W // 2] = 1
        label[:, 0] = 255
        vis['labels'] = [label, label.clone()]
    if with_noisy:
        noisy = torch.zeros(n, H, W, dtype=torch.bool)
        noisy[:, 2, 1] = True
        vis['noisy'] = [noisy, torch.zeros_like(noisy)]
    return vis


def _cell(grid, row, col, pad=2):
    y, x = pad + row * (H + pad), pad + col * (W + pad)
    return grid[y:y + H, x:x + W]


def test_draw_columns_and_pixels():
    grid = draw_dupl_visuals(fake_visuals(3), 2, 0.5, PALETTE)
    # 2 rows x (image + 2 CAMs + 2 labels + 2 noisy)
    assert grid.shape == (2 * (H + 2) + 2, 7 * (W + 2) + 2, 3)
    assert (_cell(grid, 1, 0) == 100).all()
    cam1 = _cell(grid, 0, 1).astype(int)
    # present class: hot (red) on the left, cold (blue) on the right;
    # the absent class (CAM 1 everywhere) is not drawn
    assert cam1[4, 0, 0] > cam1[4, 0, 2] and cam1[4, 7, 2] > cam1[4, 7, 0]
    cam2 = _cell(grid, 0, 2).astype(int)
    assert (cam2[..., 2] > cam2[..., 0]).all()  # all-zero CAM: blue
    label = _cell(grid, 0, 3)
    assert (label[0] == 255).all()  # ignore -> white
    assert tuple(label[4, 0]) == (128, 0, 0) and tuple(label[4, 7]) == \
        (0, 0, 0)
    noisy = _cell(grid, 0, 5).astype(int)
    assert noisy[2, 1, 0] > 150 and noisy[2, 1, 1] < 80
    assert (np.delete(noisy.reshape(-1, 3), 2 * W + 1, 0) == 100).all()
    assert (_cell(grid, 0, 6) == 100).all()


def test_draw_without_labels_and_bad_visuals():
    grid = draw_dupl_visuals(
        fake_visuals(1, with_labels=False, with_noisy=False), 2, 0.5,
        PALETTE)
    assert grid.shape == (H + 4, 3 * (W + 2) + 2, 3)  # image + 2 CAMs
    with pytest.raises(KeyError, match='cams'):
        draw_dupl_visuals(dict(img=torch.zeros(1, H, W, 3)), 1, 0.5,
                          PALETTE)
    bad = fake_visuals(1)
    bad['img'] = torch.zeros(1, 3, H, W)
    with pytest.raises(ValueError, match='uint8 RGB'):
        draw_dupl_visuals(bad, 1, 0.5, PALETTE)


class FakeDualModel(BaseModel):
    """Keeps the first ``keep_visuals`` images when asked, like the
    segmentor's ``loss()``; records the flag it saw per iteration."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)
        self.keep_visuals = 0
        self.last_visuals = None
        self.flags = []

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.linear(torch.stack(inputs))
        if mode != 'loss':
            return out
        self.flags.append(self.keep_visuals)
        if self.keep_visuals:
            vis = fake_visuals(len(inputs))
            self.last_visuals = {
                k: v[:self.keep_visuals] if torch.is_tensor(v) else
                [t[:self.keep_visuals] for t in v]
                for k, v in vis.items()
            }
        return dict(loss=out.pow(2).mean())


@MODEL_WRAPPERS.register_module(force=True)
class CAMVisDummyWrapper(BaseModel):

    def __init__(self, model):
        super().__init__()
        self.module = model

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)


@DATASETS.register_module(force=True)
class CAMVisToyDataset(Dataset):
    metainfo = dict(palette=PALETTE)

    def __len__(self):
        return 24

    def __getitem__(self, idx):
        return dict(inputs=torch.full((2, ), float(idx)), data_samples=None)


def _mock_runner(model, cur_iter):
    runner = Mock()
    runner.model = model
    runner.iter = cur_iter
    runner.train_dataloader.dataset.metainfo = dict(palette=PALETTE)
    return runner


def test_mock_runner_requests_draws_and_releases():
    hook = CAMVisualizationHook(interval=3, num_images=2)
    model = FakeDualModel()
    wrapper = CAMVisDummyWrapper(model)
    runner = _mock_runner(wrapper, 0)
    hook.before_train(runner)
    assert hook.palette == PALETTE
    for it in range(6):
        runner.iter = it
        hook.before_train_iter(runner, batch_idx=it)
        model(list(torch.zeros(4, 2)), mode='loss')
        hook.after_train_iter(runner, batch_idx=it)
    assert model.flags == [0, 0, 2, 0, 0, 2]
    assert model.last_visuals is None and model.keep_visuals == 0
    calls = runner.visualizer.add_image.call_args_list
    assert [c.kwargs['step'] for c in calls] == [3, 6]
    name, grid = calls[0].args
    assert name == 'dupl_cams'
    assert grid.dtype == np.uint8 and grid.shape[0] == 2 * (H + 2) + 2
    assert not hasattr(wrapper, 'keep_visuals')


def test_warns_when_model_kept_nothing():
    hook = CAMVisualizationHook(interval=1)
    model = FakeDualModel()
    runner = _mock_runner(model, 0)
    hook.before_train_iter(runner, 0)
    hook.after_train_iter(runner, 0)
    runner.logger.warning.assert_called_once()
    runner.visualizer.add_image.assert_not_called()


def test_fails_fast_and_bad_args():
    with pytest.raises(AttributeError, match="'keep_visuals'"):
        CAMVisualizationHook().before_train(_mock_runner(nn.Linear(1, 1), 0))
    for kwargs in (dict(interval=0), dict(num_images=0), dict(alpha=2.),
                   dict(name='a/b')):
        with pytest.raises(ValueError):
            CAMVisualizationHook(**kwargs)
    hook = HOOKS.build(dict(type='CAMVisualizationHook', interval=7))
    assert isinstance(hook, CAMVisualizationHook) and hook.interval == 7


@pytest.mark.parametrize('wrapped', [False, True])
def test_real_runner_writes_png_and_tensorboard(tmp_path, wrapped):
    model = FakeDualModel()
    runner = Runner(
        model=CAMVisDummyWrapper(model) if wrapped else model,
        work_dir=str(tmp_path),
        experiment_name=f'cam_vis_{uuid.uuid4().hex}',
        train_dataloader=dict(
            dataset=dict(type='CAMVisToyDataset'),
            sampler=dict(type='DefaultSampler', shuffle=False),
            batch_size=4,
            num_workers=0),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=dict(by_epoch=False, max_iters=6),
        default_hooks=dict(checkpoint=None),
        custom_hooks=[
            dict(type='CAMVisualizationHook', interval=3, num_images=2)
        ],
        visualizer=dict(
            type='Visualizer',
            name=f'cam_vis_{uuid.uuid4().hex}',
            vis_backends=[
                dict(type='LocalVisBackend'),
                dict(type='TensorboardVisBackend')
            ]),
        log_processor=dict(by_epoch=False),
        default_scope='mmseg')
    runner.train()
    assert model.flags == [0, 0, 2, 0, 0, 2]
    pngs = sorted(
        glob.glob(osp.join(str(tmp_path), '**', 'dupl_cams_*.png'),
                  recursive=True))
    assert [osp.basename(p) for p in pngs] == [
        'dupl_cams_3.png', 'dupl_cams_6.png'
    ]
    img = np.array(Image.open(pngs[0]))
    assert img.shape == (2 * (H + 2) + 2, 7 * (W + 2) + 2, 3)
    events = glob.glob(
        osp.join(str(tmp_path), '**', 'events.out.tfevents*'),
        recursive=True)
    assert len(events) == 1
    acc = EventAccumulator(events[0])
    acc.Reload()
    assert [e.step for e in acc.Images('dupl_cams')] == [3, 6]
