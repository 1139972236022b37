# Copyright (c) OpenMMLab. All rights reserved.
"""tools/export_pseudo_labels.py on the session toy checkpoint: PNGs for
every image, and a printed stage-2 command whose options point a
configs/stage2/ config (mmseg's PascalVOCDataset) at them, which trains
with the GMM-filtered loss from another working directory."""
import importlib.util
import os.path as osp
import re
import shlex
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config, DictAction
from mmseg.registry import DATASETS, MODELS
from PIL import Image
from stock_config_utils import loop_options, pipeline_size_options, run_train

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


def _parse_command(command: str):
    """``dist_train.sh CONFIG GPUS --cfg-options k=v ...`` -> parts."""
    words = shlex.split(command)
    assert words[0].endswith('tools/dist_train.sh') and words[3] == \
        '--cfg-options'
    return words[1], words[4:]


def _stage2_cfg(command: str, extra: tuple = ()) -> Config:
    """The printed command's config with its options (and ``extra``)."""
    config, options = _parse_command(command)
    cfg = Config.fromfile(config)
    pairs = [o.split('=', 1) for o in list(options) + list(extra)]
    cfg.merge_from_dict(
        {k: DictAction._parse_iterable(v)
         for k, v in pairs})
    return cfg


@pytest.fixture(scope='module')
def exported(toy_checkpoint, tmp_path_factory):
    """The CLI run as a user would: the toy train split, SegFormer stage 2,
    from the repository root (the toy config's data_root is relative)."""
    out = str(tmp_path_factory.mktemp('pseudo'))
    cmd = [
        sys.executable, TOOL, toy_checkpoint['config'],
        toy_checkpoint['checkpoint'], '--split', SPLIT, '--out-dir', out,
        '--stage2-arch', 'segformer-mit-b0', '--device', 'cpu'
    ] + FAST
    proc = subprocess.run(
        cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    command = proc.stdout.strip().splitlines()[-1]
    return dict(out=out, command=command, **toy_checkpoint)


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


def test_printed_command_points_a_stage2_config_at_the_labels(exported):
    config, options = _parse_command(exported['command'])
    assert config == osp.join(
        REPO, 'configs', 'stage2',
        'segformer_mit-b0_4xb4-20k_pseudo-voc12aug-512x512.py')
    for option in options:  # every path is absolute
        key, value = option.split('=', 1)
        if key.endswith(('data_root', 'seg_map_path')) and 'train' in key:
            assert osp.isabs(value), option
    cfg = _stage2_cfg(exported['command'])
    assert cfg.model.decode_head.loss_decode.type == 'GMMFilteredLoss'
    ds_cfg = cfg.train_dataloader.dataset
    assert ds_cfg.type == 'PascalVOCDataset'
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


def test_printed_command_trains_with_the_gmm_filter(exported, tmp_path):
    config, options = _parse_command(exported['command'])
    options += pipeline_size_options(config, 64) + loop_options(3) + [
        'model.backbone.init_cfg=None',
        'custom_hooks.0.start_iter=0'  # GMMNoiseFilterHook
    ]
    log = run_train(config, str(tmp_path / 'work'), options,
                    cwd=str(tmp_path))
    rows = re.findall(r'Iter\(train\) \[\s*(\d)/3\](.*)', log)
    assert [int(i) for i, _ in rows] == [1, 2, 3]
    for _, row in rows:
        ratio = float(re.search(r'gmm\.removed: (\S+)', row).group(1))
        loss = float(re.search(r'decode\.loss_ce: (\S+)', row).group(1))
        assert 0. <= ratio <= 1. and np.isfinite(loss)
    assert osp.isfile(osp.join(str(tmp_path / 'work'), 'iter_3.pth'))
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
    command = _tool().main([
        exported['config'], exported['checkpoint'], '--split', split,
        '--out-dir',
        str(tmp_path), '--mode', 'cam', '--stage2-arch', 'deeplabv3plus-r50',
        '--device', 'cpu'
    ] + FAST)
    for name in names:
        _, label = _png(osp.join(str(tmp_path), name + '.png'))
        assert set(np.unique(label).tolist()) <= set(range(6))
    assert 'deeplabv3plus_r50-d8' in _parse_command(command)[0]
    cfg = _stage2_cfg(
        command, pipeline_size_options(_parse_command(command)[0], 64))
    assert cfg.train_dataloader.dataset.ann_file == split
    cfg.model.pretrained = None
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
