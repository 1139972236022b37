# Copyright (c) OpenMMLab. All rights reserved.
"""Shrink stock mmseg configs (and the ones built on them) to a 2-iteration
CPU run on the toy VOC set: tiny crops, no downloads, no workers."""
import os
import os.path as osp
import socket
import subprocess
import sys
from typing import List

from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TRAIN_SPLIT = 'ImageSets/Segmentation/train.txt'
VAL_SPLIT = 'ImageSets/Segmentation/val.txt'


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def shrink_pipeline(pipeline: list, crop: int) -> None:
    """Scale mmseg's 512 pipelines down to ``crop`` (in place)."""
    for t in pipeline:
        if t['type'] in ('RandomResize', 'Resize') and 'scale' in t:
            t['scale'] = (4 * crop, crop)
        if t['type'] == 'RandomCrop':
            t['crop_size'] = (crop, crop)


def pipeline_size_options(config: str, crop: int) -> List[str]:
    """``--cfg-options`` (list-index keys) that shrink the train and val
    pipelines of ``config`` to ``crop`` and its data preprocessor too."""
    cfg = Config.fromfile(config)
    options = [f'model.data_preprocessor.size=({crop},{crop})']
    for loader in ('train_dataloader', 'val_dataloader'):
        pipeline = cfg[loader].dataset.pipeline
        shrink_pipeline(pipeline, crop)
        for i, t in enumerate(pipeline):
            for key in ('scale', 'crop_size'):
                if key in t:
                    options.append(f'{loader}.dataset.pipeline.{i}.{key}='
                                   f'({t[key][0]},{t[key][1]})')
    return options


def loop_options(max_iters: int = 2) -> List[str]:
    """``--cfg-options`` for a short run: logs every iteration, one
    checkpoint, no worker processes, validation on two images."""
    return [
        f'train_cfg.max_iters={max_iters}',
        f'train_cfg.val_interval={max_iters}',
        'default_hooks.logger.interval=1',
        f'default_hooks.checkpoint.interval={max_iters}',
        'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        'val_dataloader.num_workers=0',
        'val_dataloader.persistent_workers=False',
        'val_dataloader.dataset.indices=2'
    ]


def stock_toy_config(path: str, data_root: str, crop: int = 64) -> Config:
    """A stock-mmseg-based config on the toy set as mmseg's
    ``PascalVOCDataset`` (toy ids are VOC ids), tiny and offline."""
    cfg = Config.fromfile(path)
    for loader, split in (('train_dataloader', TRAIN_SPLIT),
                          ('val_dataloader', VAL_SPLIT),
                          ('test_dataloader', VAL_SPLIT)):
        dataset = cfg[loader].dataset
        shrink_pipeline(dataset.pipeline, crop)
        # ADE20K pipelines drop label 0 (reduce_zero_label): so must the
        # dataset, or mmseg's LoadAnnotations refuses
        reduce_zero_label = any(
            t.get('reduce_zero_label', False) for t in dataset.pipeline
            if t['type'] == 'LoadAnnotations')
        cfg[loader].dataset = dict(
            type='PascalVOCDataset',
            data_root=data_root,
            data_prefix=dict(
                img_path='JPEGImages', seg_map_path='SegmentationClass'),
            ann_file=split,
            reduce_zero_label=reduce_zero_label,
            pipeline=dataset.pipeline)
    cfg.model.data_preprocessor.size = (crop, crop)
    cfg.model.pretrained = None
    cfg.model.backbone.init_cfg = None
    return cfg


def run_train(config: str, work_dir: str, options: List[str],
              cwd: str, gpus: int = 0) -> str:
    """``tools/train.py`` (``gpus=0``) or ``tools/dist_train.sh CONFIG
    gpus`` from ``cwd``; returns the log, asserting exit code 0."""
    if gpus:
        cmd = ['bash', osp.join(REPO, 'tools', 'dist_train.sh'), config,
               str(gpus)]
    else:
        cmd = [sys.executable, osp.join(REPO, 'tools', 'train.py'), config]
    cmd += ['--work-dir', work_dir, '--cfg-options'] + options
    env = dict(
        os.environ, PYTHON=sys.executable, PORT=str(free_port()),
        OMP_NUM_THREADS='1')
    proc = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    return log
