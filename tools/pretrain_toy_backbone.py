# Copyright (c) OpenMMLab. All rights reserved.
"""Pretrain the toy DuPL backbone: the toy stand-in for ImageNet weights.

DuPL starts from ImageNet-pretrained DeiT weights; the toy demo starts from
this. The toy DuPL student's backbone (copied from ``--dupl-config``, so
every key matches) is trained as mmpretrain's ``ImageClassifier`` with
mmpretrain's ``MultiLabelDataset`` and mmengine's Runner on synthetic
images: 2x2 mosaics of independent scenes of the toy generator (1-3 objects
of the toy classes each, on a background kind drawn uniformly and
independently of the classes), and ``TiledMultiLabelClsHead`` classifies
each tile from its own tokens. So the task is generic classification,
without the WSSS set's water/boat co-occurrence bias, and no image of it is
in the WSSS set (own seed, own square sizes). The default mosaics are 128
px, as the toy WSSS images: each 64 px tile draws the toy objects at about
half their WSSS size. 96 px mosaics (48 px tiles, objects at about a
third, the earlier default; ``--img-size 96``) gave weights whose DuPL
runs score several points lower (benchmarks/RESULTS.md, "What the toy
recipe is made of": the ``_pretrain96`` rows).

Why tiles: a ViT this small, classified from the mean of all its tokens (or
from a class token), learns tokens that all carry the whole image's classes,
and the CAMs of such a backbone do not localise (measured: mean normalised
CAM 0.50 on the objects and 0.51 on the background of toy train images,
CAM mIoU 14-16 %). Scoring each tile from its own tokens keeps the tokens
local (0.34 vs 0.05; the pretrained head's CAMs alone reach 46-56 % mIoU),
as ImageNet-scale training does for DeiT.

The output is an mmpretrain-style checkpoint (``meta``, ``state_dict`` with
``backbone.*`` and ``head.*``), loaded by the toy configs through
``init_cfg=dict(type='Pretrained', checkpoint=..., prefix='backbone.')``.
It is cached: a sidecar ``.json`` records the settings and the checkpoint's
sha256, and a second run with the same settings returns at once. The
default checkpoint is committed (``checkpoints/toy_vit_cls.pth``, 3.4 MB;
the 64-d backbone's of ``configs/dupl_vit-tiny-narrow_toy.py`` too,
``checkpoints/toy_vit-narrow_cls.pth``), so ``make demo`` does not
pretrain; training runs on a fixed number of torch threads
(``--threads``, part of the settings), because the thread count changes
the float sums and so the bits. ``--check`` rebuilds the
weights in a temporary directory and compares them byte for byte with the
committed ones.

    python tools/pretrain_toy_backbone.py            # build or reuse
    python tools/pretrain_toy_backbone.py --force    # regenerate
    python tools/pretrain_toy_backbone.py --check    # rebuild and compare
"""
import argparse
import hashlib
import json
import os
import os.path as osp
import shutil
import sys
import tempfile
import time
from typing import Dict, List, Optional

import numpy as np
import torch
from mmengine.config import Config
from PIL import Image

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.join(REPO, 'tools'))

DUPL_CONFIG = osp.join(REPO, 'configs', 'dupl_vit-tiny_toy.py')
PRETRAIN_CONFIG = osp.join(REPO, 'configs', '_base_', 'pretrain',
                           'toy_vit_multilabel_cls.py')
DEFAULT_OUT = osp.join(REPO, 'checkpoints', 'toy_vit_cls.pth')
# The pretraining images and schedule (part of the cache key). A config
# may pin some of them in a ``toy_pretrain`` dict (the 64-d config keeps
# the 96 px mosaics its weights were built with); the command line
# overrides both.
DEFAULT_SETTINGS = dict(
    seed=0,
    num_train=4000,
    num_val=300,
    img_size=128,
    grid=2,
    iters=1200,
    batch_size=32,
    lr=2e-3,
    threads=2)


def toy_scene_fns():
    """``(make_scene, TOY_CLASSES)`` of the toy generator."""
    from toy_voc_data import TOY_CLASSES, make_scene
    return make_scene, TOY_CLASSES


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', default=DEFAULT_OUT,
                        help='checkpoint path (a .json sidecar goes next to '
                        'it)')
    parser.add_argument('--dupl-config', default=DUPL_CONFIG,
                        help='config whose model.student.backbone is '
                        'pretrained')
    for key, value in DEFAULT_SETTINGS.items():
        parser.add_argument(f'--{key.replace("_", "-")}', type=type(value),
                            default=None,
                            help=f'default: {value}, or the --dupl-config\'s '
                            f'toy_pretrain.{key}')
    parser.add_argument('--work-dir', default=None,
                        help='Runner logs (default: next to --out)')
    parser.add_argument('--force', action='store_true',
                        help='retrain even if the cached checkpoint matches')
    parser.add_argument('--check', action='store_true',
                        help='rebuild in a temporary directory and compare '
                        'with --out byte for byte (exit 1 if they differ)')
    return parser.parse_args(argv)


def resolve_settings(dupl_config: str,
                     overrides: Optional[Dict] = None) -> Dict:
    """``DEFAULT_SETTINGS``, updated by the config's ``toy_pretrain`` dict
    and then by ``overrides`` (the command line's values; ``None``: not
    given)."""
    settings = dict(DEFAULT_SETTINGS)
    pinned = Config.fromfile(dupl_config).get('toy_pretrain', {})
    for key, value in pinned.items():
        if key not in DEFAULT_SETTINGS:
            raise KeyError(f'{dupl_config}: toy_pretrain.{key} is not a '
                           f'pretraining setting; choose from '
                           f'{sorted(DEFAULT_SETTINGS)}')
        if type(value) is not type(DEFAULT_SETTINGS[key]):
            raise TypeError(f'{dupl_config}: toy_pretrain.{key} must be '
                            f'{type(DEFAULT_SETTINGS[key]).__name__}, got '
                            f'{value!r}')
        settings[key] = value
    settings.update({k: v for k, v in (overrides or {}).items()
                     if v is not None})
    return settings


def backbone_cfg(dupl_config: str) -> dict:
    """The toy student's backbone config as a classifier backbone: the same
    architecture (so the same keys and shapes), the last block's normed
    feature map as output, a trainable position table, no init."""
    cfg = Config.fromfile(dupl_config)
    backbone = cfg.model.student.backbone.to_dict()
    backbone.update(
        type='mmseg.DuPLVisionTransformer',
        out_indices=[-1],
        out_type='featmap',
        freeze_pos_embed=False,
        init_cfg=None)
    return backbone


def write_split(root: str, split: str, count: int, size: int, grid: int,
                rng: np.random.Generator) -> None:
    """Render ``count`` mosaics of ``grid x grid`` independent square
    scenes and mmpretrain's multi-label annotation file ``<split>.json``:
    ``gt_label`` holds ``tile * C + class`` for every class present in a
    tile (``TiledMultiLabelClsHead``'s order)."""
    make_scene, classes = toy_scene_fns()
    num_classes = len(classes) - 1
    tile = size // grid
    # The same probability of water with and without a boat: the background
    # kind is uniform over the five kinds and independent of the classes.
    p_water = 1.0 / 5
    os.makedirs(osp.join(root, split), exist_ok=True)
    data_list = []
    for i in range(count):
        img = np.zeros((tile * grid, tile * grid, 3), np.uint8)
        gt_label = []
        for t in range(grid * grid):
            row, col = divmod(t, grid)
            scene = make_scene(rng, tile, tile, p_water, p_water)
            img[row * tile:(row + 1) * tile,
                col * tile:(col + 1) * tile] = scene['img']
            label = scene['label']
            present = np.unique(label[(label > 0) & (label < 255)])
            gt_label += [t * num_classes + int(c) - 1 for c in present]
        path = f'{split}/{i:05d}.png'
        Image.fromarray(img).save(osp.join(root, path))
        data_list.append(dict(img_path=path, gt_label=gt_label))
    names = [f'{c}@tile{t}' for t in range(grid * grid) for c in classes[1:]]
    ann = dict(metainfo=dict(classes=names), data_list=data_list)
    with open(osp.join(root, f'{split}.json'), 'w') as f:
        json.dump(ann, f)


def build_cfg(settings: Dict, data_root: str, work_dir: str,
              dupl_config: str) -> Config:
    """The pretraining config with backbone, data and schedule filled in."""
    cfg = Config.fromfile(PRETRAIN_CONFIG)
    backbone = backbone_cfg(dupl_config)
    cfg.model.backbone = backbone
    cfg.model.head.in_channels = backbone['arch']['embed_dims']
    cfg.model.head.grid = settings['grid']
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = data_root
    cfg.train_dataloader.batch_size = settings['batch_size']
    cfg.optim_wrapper.optimizer.lr = settings['lr']
    iters = settings['iters']
    warmup = max(1, iters // 10)
    cfg.param_scheduler[0].end = warmup
    cfg.param_scheduler[1].begin = warmup
    cfg.train_cfg.max_iters = iters
    cfg.train_cfg.val_interval = iters
    cfg.default_hooks.logger.interval = max(1, min(50, iters // 4))
    cfg.randomness = dict(seed=settings['seed'], deterministic=False)
    cfg.work_dir = work_dir
    cfg.experiment_name = 'pretrain_toy_backbone'
    return cfg


def cache_key(settings: Dict, dupl_config: str) -> Dict:
    """Everything the weights depend on: the settings and the backbone."""
    return dict(settings=settings, backbone=backbone_cfg(dupl_config))


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def cached(out: str, key: Dict) -> bool:
    """True if ``out`` exists, is intact and was made with ``key``."""
    sidecar = out + '.json'
    if not (osp.isfile(out) and osp.isfile(sidecar)):
        return False
    with open(sidecar) as f:
        record = json.load(f)
    return record.get('key') == json.loads(json.dumps(key)) and \
        record.get('sha256') == file_sha256(out)


def save_backbone_checkpoint(model, out: str, meta: Dict) -> None:
    """An mmpretrain-style checkpoint: ``meta`` and the model's
    ``state_dict`` (``backbone.*``, ``head.*``) on the CPU."""
    from mmengine.runner.checkpoint import save_checkpoint, weights_to_cpu
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    save_checkpoint(
        dict(meta=meta, state_dict=weights_to_cpu(model.state_dict())), out)


def pretrain(settings: Dict, out: str, dupl_config: str = DUPL_CONFIG,
             work_dir: Optional[str] = None, force: bool = False) -> Dict:
    """Build (or reuse) the pretrained checkpoint; return its record."""
    key = cache_key(settings, dupl_config)
    if not force and cached(out, key):
        with open(out + '.json') as f:
            record = json.load(f)
        print(f'pretrained toy backbone up to date: {out}')
        return dict(record, reused=True)
    from mmengine.runner import Runner
    work_dir = work_dir or osp.splitext(out)[0] + '_work'
    start = time.time()
    data_root = tempfile.mkdtemp(prefix='toy_cls_')
    try:
        rng = np.random.default_rng(settings['seed'])
        for split in ('train', 'val'):
            write_split(data_root, split, settings[f'num_{split}'],
                        settings['img_size'], settings['grid'], rng)
        cfg = build_cfg(settings, data_root, work_dir, dupl_config)
        runner = Runner.from_cfg(cfg)
        threads = torch.get_num_threads()
        torch.set_num_threads(settings['threads'])
        try:
            runner.train()
        finally:
            torch.set_num_threads(threads)
        metrics = runner.message_hub.log_scalars
        # 'val/multi-label/mAP' -> 'mAP' (the timing scalars are dropped)
        val = {k.rsplit('/', 1)[1]: round(float(v.current()), 2)
               for k, v in metrics.items()
               if k.startswith('val/') and k.count('/') == 2}
    finally:
        shutil.rmtree(data_root, ignore_errors=True)
    save_backbone_checkpoint(runner.model, out, dict(key, val=val))
    record = dict(key=key, sha256=file_sha256(out), val=val,
                  seconds=round(time.time() - start, 1))
    with open(out + '.json', 'w') as f:
        json.dump(record, f, indent=1)
    print(f'pretrained toy backbone written: {out} ({record["seconds"]} s, '
          f'val {val})')
    return dict(record, reused=False)


def check(settings: Dict, out: str, dupl_config: str = DUPL_CONFIG) -> Dict:
    """Rebuild ``out`` in a temporary directory; return the record with
    ``identical`` (the two files' sha256 equal)."""
    if not osp.isfile(out):
        raise FileNotFoundError(f'--check: no checkpoint to compare at {out}')
    with tempfile.TemporaryDirectory(prefix='toy_pretrain_check_') as tmp:
        record = pretrain(settings, osp.join(tmp, osp.basename(out)),
                          dupl_config, force=True)
    expected = file_sha256(out)
    identical = record['sha256'] == expected
    print(f"--check: rebuilt sha256 {record['sha256']}, {out} {expected}: "
          + ('identical' if identical else 'DIFFERENT'))
    return dict(record, identical=identical)


def main(argv: Optional[List[str]] = None) -> Dict:
    args = parse_args(argv)
    settings = resolve_settings(
        args.dupl_config, {k: getattr(args, k) for k in DEFAULT_SETTINGS})
    if args.check:
        record = check(settings, args.out, args.dupl_config)
        if not record['identical']:
            sys.exit(1)
        return record
    return pretrain(settings, args.out, args.dupl_config, args.work_dir,
                    args.force)


if __name__ == '__main__':
    main()
