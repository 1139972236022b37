# Copyright (c) OpenMMLab. All rights reserved.
"""Export DuPL pseudo labels as mmseg PNG label maps, plus a stage-2 config.

Runs a trained DuPL model over a split with the config's test pipeline
(without ``LoadAnnotations``: no mask is read) and the dataset's
image-level labels, and writes one PNG per image at its original size:

- ``--mode pseudo`` (default): the PAR-refined two-threshold training
  labels (``model.test_cfg.predict_on='pseudo'``), 255 where uncertain;
- ``--mode cam``: the CAM labels (``predict_on='cam'``, background where
  the best present-class CAM <= ``test_cfg.bkg_thr``).

It also writes ``OUT_DIR/stage2_<arch>.py``: a config that trains a stock
mmseg segmentor (DeepLabV3+ R-50 or SegFormer MiT-B0) on these PNGs with
mmseg's ``BaseSegDataset``, validating on the source config's val split,
with the GMM noise filter (``GMMFilteredLoss``) on its decode head loss::

    python tools/export_pseudo_labels.py configs/dupl_vit-b_voc.py CKPT \\
        --split ImageSets/Segmentation/train_aug.txt \\
        --out-dir work_dirs/pseudo_voc
    tools/dist_train.sh work_dirs/pseudo_voc/stage2_deeplabv3plus-r50.py 4
"""
import argparse
import os
import os.path as osp
import sys
from collections import Counter
from typing import List, Optional

import numpy as np
import torch
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope
from mmengine.runner import Runner, load_checkpoint
from mmengine.utils import ProgressBar
from mmseg.registry import MODELS
from PIL import Image

# Repository root (the parent of tools/), for ``custom_imports``.
REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

IGNORE_INDEX = 255
# DuPL's GMM needs more than 1000 fit pixels per 448x448 crop; the stage-2
# config keeps that fraction of the crop.
DUPL_MIN_PIXELS, DUPL_CROP = 1000, 448
MODE_TO_PREDICT_ON = dict(pseudo='pseudo', cam='cam')

STAGE2_PRETRAINED = {
    'deeplabv3plus-r50': 'open-mmlab://resnet50_v1c',
    'segformer-mit-b0': ('https://download.openmmlab.com/mmsegmentation/v0.5/'
                         'pretrain/segformer/mit_b0_20220624-7e0fe6dd.pth'),
}

STAGE2_HEADER = '''\
# Stage 2 of DuPL: a stock mmseg {title} trained on pseudo labels.
# Written by tools/export_pseudo_labels.py from
#   config:     {config}
#   checkpoint: {checkpoint}
#   mode:       {mode}, uncertain pixels {uncertain}
# Train: python tools/train.py {cfg_path}
#    or: tools/dist_train.sh {cfg_path} 4
# Offline: --cfg-options model.backbone.init_cfg.checkpoint=LOCAL.pth, or
#          model.backbone.init_cfg=None to train from scratch.
custom_imports = dict(imports=['mmseg_dupl'], allow_failed_imports=False)
default_scope = 'mmseg'
data_root = {data_root!r}
pseudo_label_dir = {label_dir!r}
train_split = {split!r}
img_dir = {img_dir!r}
img_suffix = {img_suffix!r}
val_data_root = {val_data_root!r}
val_split = {val_split!r}
val_img_dir = {val_img_dir!r}
val_seg_dir = {val_seg_dir!r}
val_img_suffix = {val_img_suffix!r}
val_seg_suffix = {val_seg_suffix!r}
metainfo = dict(
    classes={classes!r},
    palette={palette!r})
num_classes = {num_classes}
crop_size = ({crop}, {crop})
img_scale = ({scale_w}, {crop})
max_iters = {iters}
pretrained = {pretrained!r}
norm_cfg = dict(type='SyncBN', requires_grad=True)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=crop_size)
# Exported pseudo labels are noisy: from gmm_start_iter on, a two-component
# GMM of each image's per-pixel CE flags the high-loss foreground pixels,
# which the CE then ignores (DuPL spec 8; min_pixels scaled to the crop).
gmm_start_iter = {gmm_start}
gmm_loss = dict(
    type='GMMFilteredLoss',
    loss_cfg=dict(
        type='CrossEntropyLoss',
        use_sigmoid=False,
        loss_weight=1.0,
        avg_non_ignore=True),
    min_loss=0.1,
    min_pixels={min_pixels},
    min_mean_gap=1.0,
    gamma=0.95,
    start_iter=gmm_start_iter)
'''

STAGE2_MODELS = dict([('deeplabv3plus-r50', ('DeepLabV3+ R-50-D8', '''\
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(
        type='ResNetV1c',
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        dilations=(1, 1, 2, 4),
        strides=(1, 2, 1, 1),
        norm_cfg=norm_cfg,
        norm_eval=False,
        style='pytorch',
        contract_dilation=True,
        init_cfg={init_cfg}),
    decode_head=dict(
        type='DepthwiseSeparableASPPHead',
        in_channels=2048,
        in_index=3,
        channels=512,
        dilations=(1, 12, 24, 36),
        c1_in_channels=256,
        c1_channels=48,
        dropout_ratio=0.1,
        num_classes=num_classes,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=gmm_loss),
    auxiliary_head=dict(
        type='FCNHead',
        in_channels=1024,
        in_index=2,
        channels=256,
        num_convs=1,
        concat_input=False,
        dropout_ratio=0.1,
        num_classes=num_classes,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss',
            use_sigmoid=False,
            loss_weight=0.4,
            avg_non_ignore=True)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
# mmseg's schedule_20k (SGD, poly)
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0005),
    clip_grad=None)
param_scheduler = [
    dict(
        type='PolyLR',
        eta_min=1e-4,
        power=0.9,
        begin=0,
        end=max_iters,
        by_epoch=False)
]
''')), ('segformer-mit-b0', ('SegFormer MiT-B0', '''\
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(
        type='MixVisionTransformer',
        in_channels=3,
        embed_dims=32,
        num_stages=4,
        num_layers=[2, 2, 2, 2],
        num_heads=[1, 2, 5, 8],
        patch_sizes=[7, 3, 3, 3],
        sr_ratios=[8, 4, 2, 1],
        out_indices=(0, 1, 2, 3),
        mlp_ratio=4,
        qkv_bias=True,
        drop_rate=0.0,
        attn_drop_rate=0.0,
        drop_path_rate=0.1,
        init_cfg={init_cfg}),
    decode_head=dict(
        type='SegformerHead',
        in_channels=[32, 64, 160, 256],
        in_index=[0, 1, 2, 3],
        channels=256,
        dropout_ratio=0.1,
        num_classes=num_classes,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=gmm_loss),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
# mmseg's SegFormer recipe (AdamW, warm-up then poly)
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=0.00006, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(
        custom_keys=dict(
            pos_block=dict(decay_mult=0.),
            norm=dict(decay_mult=0.),
            head=dict(lr_mult=10.))))
param_scheduler = [
    dict(
        type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0,
        end=min(1500, max_iters)),
    dict(
        type='PolyLR',
        eta_min=0.0,
        power=1.0,
        begin=min(1500, max_iters),
        end=max_iters,
        by_epoch=False)
]
'''))])

STAGE2_DATA_AND_RUNTIME = '''\
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(
        type='RandomResize',
        scale=img_scale,
        ratio_range=(0.5, 2.0),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    batch_size=4,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='BaseSegDataset',
        data_root=data_root,
        metainfo=metainfo,
        ann_file=train_split,
        data_prefix=dict(img_path=img_dir, seg_map_path=pseudo_label_dir),
        img_suffix=img_suffix,
        seg_map_suffix='.png',
        reduce_zero_label=False,
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='BaseSegDataset',
        data_root=val_data_root,
        metainfo=metainfo,
        ann_file=val_split,
        data_prefix=dict(img_path=val_img_dir, seg_map_path=val_seg_dir),
        img_suffix=val_img_suffix,
        seg_map_suffix=val_seg_suffix,
        reduce_zero_label=False,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
train_cfg = dict(
    type='IterBasedTrainLoop',
    max_iters=max_iters,
    val_interval=max(max_iters // 10, 1))
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='CheckpointHook',
        by_epoch=False,
        interval=max(max_iters // 10, 1),
        max_keep_ckpts=2),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
env_cfg = dict(
    cudnn_benchmark=True,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'))
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(
    type='SegLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0)
'''


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Export DuPL pseudo labels (mmseg PNGs) and a stage-2 '
        'segmentation config')
    parser.add_argument('config', help='DuPL config file')
    parser.add_argument('checkpoint', help='DuPL checkpoint')
    parser.add_argument(
        '--split',
        default='ImageSets/Segmentation/train.txt',
        help='split file (relative to the test dataset data_root)')
    parser.add_argument('--out-dir', required=True, help='output folder')
    parser.add_argument(
        '--mode',
        choices=sorted(MODE_TO_PREDICT_ON),
        default='pseudo',
        help='pseudo: PAR-refined two-threshold labels (255 uncertain); '
        'cam: CAM labels')
    parser.add_argument(
        '--uncertain-as-ignore',
        action=argparse.BooleanOptionalAction,
        default=True,
        help='keep 255 for uncertain pixels (default); with '
        '--no-uncertain-as-ignore they become background (0)')
    parser.add_argument(
        '--png-mode',
        choices=['P', 'L'],
        default='P',
        help="'P' (palette, as VOC's masks) or 'L' (grey) PNGs")
    parser.add_argument(
        '--stage2-arch',
        choices=sorted(STAGE2_MODELS),
        default='deeplabv3plus-r50',
        help='stock mmseg segmentor of the stage-2 config')
    parser.add_argument(
        '--stage2-crop-size',
        type=int,
        default=512,
        help='training crop of the stage-2 config')
    parser.add_argument(
        '--stage2-iters',
        type=int,
        default=20000,
        help='iterations of the stage-2 config')
    parser.add_argument(
        '--stage2-pretrained',
        default=None,
        help="backbone weights of the stage-2 config (default: mmseg's "
        "ImageNet weights of the arch); 'none' trains from scratch")
    parser.add_argument(
        '--gmm-start-iter',
        type=int,
        default=None,
        help='first iteration of the GMM filter in the stage-2 config '
        '(default: 40%% of --stage2-iters, as DuPL 8k of 20k)')
    parser.add_argument(
        '--device',
        default='cuda' if torch.cuda.is_available() else 'cpu',
        help='device to run the model on')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the DuPL config, key=value')
    args = parser.parse_args(argv)
    if args.stage2_crop_size < 1 or args.stage2_iters < 1:
        parser.error('--stage2-crop-size and --stage2-iters must be >= 1')
    return args


def _drop_annotations(pipeline: list) -> list:
    """The pipeline without ``Load(Checked)Annotations`` (no mask is read)."""
    return [
        t for t in pipeline
        if str(t.get('type', '')).split('.')[-1] not in (
            'LoadAnnotations', 'LoadCheckedAnnotations')
    ]


def export_dataloader_cfg(cfg: Config, split: str) -> dict:
    """The test dataloader over ``split``, batch 1, no masks, in order."""
    loader = cfg.test_dataloader.copy()
    dataset = loader['dataset'].copy()
    dataset['ann_file'] = split
    dataset['test_mode'] = True
    dataset['pipeline'] = _drop_annotations(dataset['pipeline'])
    loader.update(
        dataset=dataset,
        batch_size=1,
        num_workers=0,
        persistent_workers=False,
        sampler=dict(type='DefaultSampler', shuffle=False))
    return loader


def build_model(cfg: Config, checkpoint: str, mode: str,
                device: str) -> torch.nn.Module:
    """The DuPL model in eval mode predicting ``mode`` labels."""
    model_cfg = cfg.model.copy()
    test_cfg = dict(model_cfg.get('test_cfg') or {})
    test_cfg['predict_on'] = MODE_TO_PREDICT_ON[mode]
    model_cfg['test_cfg'] = test_cfg
    from mmseg_dupl.models.schedules.iteration import \
        set_iteration_from_checkpoint
    model = MODELS.build(model_cfg)
    state = load_checkpoint(
        model, checkpoint, map_location='cpu', strict=True)
    # label with the thresholds of the checkpoint's last iteration
    set_iteration_from_checkpoint(state)
    return model.to(device).eval()


def png_palette(dataset_palette: list) -> List[int]:
    """768 palette entries: the dataset's colours, VOC's for the rest."""
    from mmseg_dupl.visualization.palette import voc_colormap
    colours = voc_colormap(256)
    for i, rgb in enumerate(dataset_palette[:256]):
        colours[i] = rgb
    return colours.reshape(-1).tolist()


def save_label(label: np.ndarray, path: str, png_mode: str,
               palette: List[int]) -> None:
    """Write a (H, W) uint8 label map as a PNG."""
    os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    img = Image.fromarray(label.astype(np.uint8), mode='L')
    if png_mode == 'P':
        img = img.convert('P')
        img.putpalette(palette)
    img.save(path)


def label_name(img_path: str, img_dir: str, img_suffix: str) -> str:
    """``img_dir/<name><suffix>`` -> ``<name>`` (may contain folders)."""
    rel = osp.relpath(img_path, img_dir)
    if rel.startswith('..'):
        rel = osp.basename(img_path)
    if img_suffix and rel.endswith(img_suffix):
        return rel[:-len(img_suffix)]
    return osp.splitext(rel)[0]


def export_labels(model, dataloader, out_dir: str, keep_ignore: bool,
                  png_mode: str) -> Counter:
    """Predict and write one PNG per image; return the label histogram."""
    dataset = dataloader.dataset
    img_dir = dataset.data_prefix.get('img_path', '')
    palette = png_palette(list(dataset.metainfo.get('palette', [])))
    hist = Counter()
    progress = ProgressBar(len(dataset))
    for data in dataloader:
        with torch.no_grad():
            samples = model.test_step(data)
        for sample in samples:
            label = sample.pred_sem_seg.data[0].cpu().numpy()
            label = label.astype(np.uint8)
            if not keep_ignore:
                label[label == IGNORE_INDEX] = 0
            name = label_name(sample.img_path, img_dir, dataset.img_suffix)
            save_label(label, osp.join(out_dir, name + '.png'), png_mode,
                       palette)
            values, counts = np.unique(label, return_counts=True)
            hist.update(dict(zip(values.tolist(), counts.tolist())))
            progress.update()
    return hist


def stage2_config_text(cfg: Config, args: argparse.Namespace, dataset,
                       label_dir: str, cfg_path: str) -> str:
    """The stage-2 config (see ``STAGE2_*``) as Python source."""
    val = cfg.val_dataloader.dataset
    val_prefix = val.get('data_prefix', {})
    meta = dataset.metainfo
    crop = args.stage2_crop_size
    gmm_start = args.gmm_start_iter
    if gmm_start is None:
        gmm_start = args.stage2_iters * 2 // 5
    pretrained = args.stage2_pretrained or STAGE2_PRETRAINED[
        args.stage2_arch]
    init_cfg = 'None' if pretrained.lower() == 'none' else \
        "dict(type='Pretrained', checkpoint=pretrained)"
    title, model_text = STAGE2_MODELS[args.stage2_arch]
    src_prefix = cfg.test_dataloader.dataset.get('data_prefix', {})
    header = STAGE2_HEADER.format(
        title=title,
        cfg_path=cfg_path,
        config=args.config,
        checkpoint=args.checkpoint,
        mode=args.mode,
        uncertain='kept as 255 (ignored)'
        if args.uncertain_as_ignore else 'set to background',
        data_root=cfg.test_dataloader.dataset.get('data_root') or '',
        label_dir=label_dir,
        split=args.split,
        img_dir=src_prefix.get('img_path', ''),
        img_suffix=dataset.img_suffix,
        val_data_root=val.get('data_root') or '',
        val_split=val.get('ann_file', ''),
        val_img_dir=val_prefix.get('img_path', ''),
        val_seg_dir=val_prefix.get('seg_map_path', ''),
        val_img_suffix=val.get('img_suffix', dataset.img_suffix),
        val_seg_suffix=val.get('seg_map_suffix', '.png'),
        classes=tuple(meta['classes']),
        palette=[list(map(int, c)) for c in meta['palette']],
        num_classes=len(meta['classes']),
        crop=crop,
        scale_w=4 * crop,
        iters=args.stage2_iters,
        pretrained=pretrained,
        gmm_start=gmm_start,
        min_pixels=max(1, round(DUPL_MIN_PIXELS * crop**2 / DUPL_CROP**2)))
    return '\n'.join([
        header,
        model_text.format(init_cfg=init_cfg), STAGE2_DATA_AND_RUNTIME
    ])


def main(argv: Optional[List[str]] = None) -> str:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    out_dir = osp.abspath(args.out_dir)
    os.makedirs(out_dir, exist_ok=True)
    dataloader = Runner.build_dataloader(
        export_dataloader_cfg(cfg, args.split))
    dataset = dataloader.dataset
    if 'classes' not in dataset.metainfo:
        raise ValueError(f'{args.config}: test_dataloader.dataset has no '
                         'metainfo classes; the stage-2 config needs them')
    model = build_model(cfg, args.checkpoint, args.mode, args.device)
    hist = export_labels(model, dataloader, out_dir,
                         args.uncertain_as_ignore, args.png_mode)
    arch = args.stage2_arch
    cfg_path = osp.join(out_dir, f'stage2_{arch}.py')
    with open(cfg_path, 'w') as f:
        f.write(stage2_config_text(cfg, args, dataset, out_dir, cfg_path))
    total = max(sum(hist.values()), 1)
    shares = ', '.join(f'{k}: {v / total:.3f}'
                       for k, v in sorted(hist.items()))
    print(f'\nwrote {len(dataset)} {args.mode} label maps to {out_dir} '
          f'(pixel shares {shares})\nstage-2 config: {cfg_path}')
    return cfg_path


if __name__ == '__main__':
    main()
