# Copyright (c) OpenMMLab. All rights reserved.
"""tools/export_pseudo_labels.py on the session toy checkpoint: PNGs for
every image, a stock BaseSegDataset reading them from the generated
stage-2 config, and that config training with the GMM-filtered loss."""
import importlib.util
import os.path as osp
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmseg.registry import DATASETS, MODELS
from PIL import Image

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(REPO, 'tools', 'export_pseudo_labels.py')
SPLIT = 'ImageSets/Segmentation/train.txt'
VALUES = set(range(6)) | {255}
# single-scale CAMs keep the runs short (the default is 1.0, 0.5, 1.5)
FAST = ['--cfg-options', 'model.test_cfg.cam_scales=[1.0]']


def _tool():
    spec = importlib.util.spec_from_file_location('export_pseudo', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _names(data_root, split=SPLIT):
    with open(osp.join(data_root, split)) as f:
        return [ln.strip() for ln in f if ln.strip()]


def _png(path):
    img = Image.open(path)
    return img.mode, np.array(img)


@pytest.fixture(scope='module')
def exported(toy_checkpoint, tmp_path_factory):
    """The CLI run as a user would: the toy train split, SegFormer stage 2
    at a 64 crop."""
    out = str(tmp_path_factory.mktemp('pseudo'))
    cmd = [
        sys.executable, TOOL, toy_checkpoint['config'],
        toy_checkpoint['checkpoint'], '--split', SPLIT, '--out-dir', out,
        '--stage2-arch', 'segformer-mit-b0', '--stage2-crop-size', '64',
        '--device', 'cpu'
    ] + FAST
    proc = subprocess.run(
        cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return dict(out=out, cfg=osp.join(out, 'stage2_segformer-mit-b0.py'),
                **toy_checkpoint)


@pytest.fixture(scope='module')
def small_split(toy_checkpoint, tmp_path_factory):
    """An absolute split file with the first 3 train images."""
    path = tmp_path_factory.mktemp('split') / 'three.txt'
    names = _names(toy_checkpoint['data_root'])[:3]
    path.write_text('\n'.join(names) + '\n')
    return str(path), names


def test_a_png_per_image_at_original_size(exported):
    root = exported['data_root']
    names = _names(root)
    seen = set()
    for name in names:
        mode, label = _png(osp.join(exported['out'], name + '.png'))
        w, h = Image.open(osp.join(root, 'JPEGImages', name + '.jpg')).size
        assert mode == 'P' and label.shape == (h, w)
        seen |= set(np.unique(label).tolist())
    assert seen <= VALUES
    # the two-threshold labels have background, foreground and uncertain
    assert {0, 255} <= seen and seen & set(range(1, 6))


def test_stage2_config_loads_in_stock_base_seg_dataset(exported):
    cfg = Config.fromfile(exported['cfg'])
    assert cfg.model.type == 'EncoderDecoder'
    assert cfg.model.decode_head.loss_decode.type == 'GMMFilteredLoss'
    ds_cfg = cfg.train_dataloader.dataset
    assert ds_cfg.type == 'BaseSegDataset'
    assert ds_cfg.data_prefix.seg_map_path == exported['out']
    dataset = DATASETS.build(ds_cfg)
    names = _names(exported['data_root'])
    assert len(dataset) == len(names)
    assert dataset.metainfo['classes'][1] == 'aeroplane'
    info = dataset.get_data_info(0)
    assert info['seg_map_path'] == osp.join(exported['out'],
                                            names[0] + '.png')
    sample = dataset[0]['data_samples']
    assert set(sample.gt_sem_seg.data.unique().tolist()) <= VALUES
    val = DATASETS.build(cfg.val_dataloader.dataset)
    assert len(val) == len(_names(exported['data_root'],
                                  'ImageSets/Segmentation/val.txt'))


def test_stage2_config_trains_with_the_gmm_filter(exported, tmp_path):
    cmd = [
        sys.executable,
        osp.join(REPO, 'tools', 'train.py'), exported['cfg'], '--work-dir',
        str(tmp_path), '--cfg-options', 'train_cfg.max_iters=3',
        'train_cfg.val_interval=3', 'default_hooks.logger.interval=1',
        'default_hooks.checkpoint.interval=3', 'train_dataloader.batch_size=2',
        'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        'val_dataloader.num_workers=0',
        'val_dataloader.persistent_workers=False',
        'val_dataloader.dataset.indices=2', 'model.backbone.init_cfg=None',
        'model.decode_head.loss_decode.start_iter=0'
    ]
    proc = subprocess.run(
        cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    rows = re.findall(r'Iter\(train\) \[\s*(\d)/3\](.*)', log)
    assert [int(i) for i, _ in rows] == [1, 2, 3]
    for _, row in rows:
        ratio = float(re.search(r'gmm_noise_ratio: (\S+)', row).group(1))
        loss = float(re.search(r'decode\.loss_ce: (\S+)', row).group(1))
        assert 0. <= ratio <= 1. and np.isfinite(loss)
    assert osp.isfile(osp.join(str(tmp_path), 'iter_3.pth'))
    assert 'mIoU' in log


def test_no_uncertain_as_ignore_maps_255_to_background(
        exported, small_split, tmp_path):
    split, names = small_split
    _tool().main([
        exported['config'], exported['checkpoint'], '--split', split,
        '--out-dir',
        str(tmp_path), '--no-uncertain-as-ignore', '--png-mode', 'L',
        '--device', 'cpu'
    ] + FAST)
    uncertain = 0
    for name in names:
        _, ref = _png(osp.join(exported['out'], name + '.png'))
        mode, label = _png(osp.join(str(tmp_path), name + '.png'))
        assert mode == 'L'
        assert (label[ref == 255] == 0).all()
        assert (label[ref != 255] == ref[ref != 255]).all()
        uncertain += int((ref == 255).sum())
    assert uncertain > 0


def test_cam_mode_and_deeplab_stage2(exported, small_split, tmp_path):
    split, names = small_split
    cfg_path = _tool().main([
        exported['config'], exported['checkpoint'], '--split', split,
        '--out-dir',
        str(tmp_path), '--mode', 'cam', '--stage2-arch', 'deeplabv3plus-r50',
        '--stage2-pretrained', 'none', '--stage2-crop-size', '64',
        '--device', 'cpu'
    ] + FAST)
    for name in names:
        _, label = _png(osp.join(str(tmp_path), name + '.png'))
        assert set(np.unique(label).tolist()) <= set(range(6))
    cfg = Config.fromfile(cfg_path)
    assert cfg.model.backbone.init_cfg is None
    assert cfg.train_dataloader.dataset.ann_file == split
    model = MODELS.build(cfg.model)
    loss_type = type(model.decode_head.loss_decode).__name__
    assert loss_type == 'GMMFilteredLoss'
    batch = DATASETS.build(cfg.train_dataloader.dataset)[0]
    data = model.data_preprocessor(
        dict(
            inputs=[batch['inputs']] * 2,
            data_samples=[batch['data_samples']] * 2), True)
    losses = model.loss(data['inputs'], data['data_samples'])
    assert torch.isfinite(losses['decode.loss_ce'])
    assert torch.isfinite(losses['aux.loss_ce'])


def test_bad_arguments(toy_checkpoint, tmp_path):
    tool = _tool()
    with pytest.raises(SystemExit):
        tool.parse_args(['a.py', 'b.pth', '--out-dir', 'x', '--mode', 'seg'])
    with pytest.raises(SystemExit):
        tool.parse_args(['a.py', 'b.pth'])  # --out-dir is required
    with pytest.raises(FileNotFoundError, match='missing.txt'):
        tool.main([
            toy_checkpoint['config'], toy_checkpoint['checkpoint'],
            '--split', 'missing.txt', '--out-dir',
            str(tmp_path)
        ])
