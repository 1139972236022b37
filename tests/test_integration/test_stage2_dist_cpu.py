# Copyright (c) OpenMMLab. All rights reserved.
"""A stage-2 config (configs/stage2/) trains through tools/dist_train.sh
with 2 gloo processes on the CPU, run from outside the repository: its
data paths resolve from the config file, and mmseg's SyncBN is reverted
to BN by the CPU launch path."""
import os.path as osp
import re

import numpy as np
import pytest
from mmengine.config import Config
from PIL import Image
from stock_config_utils import (REPO, TRAIN_SPLIT, loop_options,
                                pipeline_size_options, run_train)

STAGE2 = osp.join(REPO, 'configs', 'stage2')
SEGFORMER = osp.join(STAGE2,
                     'segformer_mit-b0_4xb4-20k_pseudo-voc12aug-512x512.py')
DEEPLAB = osp.join(STAGE2,
                   'deeplabv3plus_r50-d8_4xb4-20k_pseudo-voc12aug-512x512.py')


def fake_pseudo_labels(data_root: str, out_dir: str) -> int:
    """Random label PNGs (ids 0..5 and 255) for the toy train split."""
    rng = np.random.RandomState(0)
    with open(osp.join(data_root, TRAIN_SPLIT)) as f:
        names = [ln.strip() for ln in f if ln.strip()]
    for name in names:
        w, h = Image.open(osp.join(data_root, 'JPEGImages',
                                   name + '.jpg')).size
        label = rng.choice([0, 0, 1, 2, 3, 4, 5, 255], size=(h, w))
        Image.fromarray(label.astype(np.uint8)).save(
            osp.join(out_dir, name + '.png'))
    return len(names)


def stage2_toy_options(data_root: str, label_dir: str) -> list:
    """What tools/export_pseudo_labels.py prints for the toy set, plus
    64-pixel crops, no downloads and the GMM filter from iteration 0."""
    return [
        f'train_dataloader.dataset.data_root={data_root}',
        f'train_dataloader.dataset.ann_file={TRAIN_SPLIT}',
        f'train_dataloader.dataset.data_prefix.seg_map_path={label_dir}',
        f'val_dataloader.dataset.data_root={data_root}',
        f'test_dataloader.dataset.data_root={data_root}',
        'model.backbone.init_cfg=None',
        'custom_hooks.0.start_iter=0',  # GMMNoiseFilterHook
    ] + pipeline_size_options(SEGFORMER, 64) + loop_options()


@pytest.mark.parametrize('config', [SEGFORMER, DEEPLAB], ids=osp.basename)
def test_stage2_configs_resolve_paths_from_the_config_file(config):
    cfg = Config.fromfile(config)
    expected = osp.normpath(osp.join(REPO, 'data', 'VOCdevkit', 'VOC2012'))
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        assert osp.normpath(cfg[loader].dataset.data_root) == expected
    loss = cfg.model.decode_head.loss_decode
    assert loss.type == 'GMMFilteredLoss' and 'use_sigmoid' not in loss
    assert cfg.model.decode_head.num_classes == 21
    assert cfg.model.decode_head.norm_cfg.type == 'SyncBN'
    assert cfg.runner_type == 'CPULaunchRunner'  # reverts it on CPU DDP


def test_segformer_stage2_trains_on_two_gloo_processes(toy_data_root,
                                                       tmp_path):
    label_dir = tmp_path / 'labels'
    label_dir.mkdir()
    fake_pseudo_labels(toy_data_root, str(label_dir))
    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    work_dir = str(tmp_path / 'work')
    log = run_train(
        SEGFORMER, work_dir,
        stage2_toy_options(toy_data_root, str(label_dir)),
        cwd=str(elsewhere), gpus=2)
    assert 'Distributed training is not used' not in log
    assert 'SyncBN layers reverted to BatchNorm' in log
    rows = re.findall(r'Iter\(train\) \[2/2\].*', log)
    assert rows, log[-3000:]
    ratio = float(re.search(r'gmm\.removed: (\S+)', rows[0]).group(1))
    assert 0. <= ratio <= 1.
    assert osp.isfile(osp.join(work_dir, 'iter_2.pth'))
    assert 'mIoU' in log
