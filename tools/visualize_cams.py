# Copyright (c) OpenMMLab. All rights reserved.
"""Draw a DuPL model's CAMs, CAM labels and pseudo labels, one PNG per image.

Each output row is, at the image's original size::

    image | CAM of each present class, student 1 | ..., student 2
          | CAM label (test_cfg.bkg_thr) | pseudo label (255 white)

Images come from a split of the config's test dataset (``--split``,
``--num``), with the dataset's image-level labels, or from files
(``--images``), labelled by ``--labels cls1,cls2`` or else looked up by
name in the dataset's ``cls_label_file``::

    python tools/visualize_cams.py CONFIG CKPT \\
        --split ImageSets/Segmentation/train.txt --num 8 --out-dir vis
    python tools/visualize_cams.py CONFIG CKPT --images a.jpg b.jpg \\
        --labels dog,person --out-dir vis
"""
import argparse
import copy
import os
import os.path as osp
import sys
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from mmcv.transforms import Compose
from mmengine.config import Config, DictAction
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint
from mmseg.registry import DATASETS, MODELS

# Repository root (the parent of tools/), for ``custom_imports``.
REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

CAPTION_H = 14


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Draw DuPL CAMs, CAM labels and pseudo labels')
    parser.add_argument('config', help='DuPL config file')
    parser.add_argument('checkpoint', help='DuPL checkpoint')
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument('--images', nargs='+', help='image files')
    source.add_argument(
        '--split', help='split file of the test dataset (relative to its '
        'data_root)')
    parser.add_argument(
        '--num', type=int, default=8, help='images drawn from --split')
    parser.add_argument(
        '--labels',
        help='comma-separated class names of the --images (default: look '
        "them up in the dataset's cls_label_file)")
    parser.add_argument('--out-dir', required=True, help='output folder')
    parser.add_argument(
        '--alpha', type=float, default=0.5, help='heat-map weight')
    parser.add_argument(
        '--device',
        default='cuda' if torch.cuda.is_available() else 'cpu',
        help='device to run the model on')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, key=value')
    args = parser.parse_args(argv)
    if args.labels and not args.images:
        parser.error('--labels goes with --images (a split has its labels)')
    if args.num < 1:
        parser.error('--num must be >= 1')
    return args


def _dataset_cfg(cfg: Config) -> dict:
    return copy.deepcopy(cfg.test_dataloader.dataset)


def dataset_meta(cfg: Config) -> Tuple[Sequence[str], List[List[int]]]:
    """Class names (background first) and palette of the test dataset."""
    from mmseg_dupl.visualization.palette import voc_colormap
    ds = _dataset_cfg(cfg)
    meta = dict(getattr(DATASETS.get(ds['type']), 'METAINFO', {}))
    meta.update(ds.get('metainfo') or {})
    if 'classes' not in meta:
        raise ValueError(f'{cfg.filename}: test_dataloader.dataset has no '
                         'metainfo classes')
    palette = meta.get('palette') or []
    if len(palette) < len(meta['classes']):
        palette = voc_colormap(256).tolist()
    return tuple(meta['classes']), [list(map(int, c)) for c in palette]


def split_items(cfg: Config, split: str, num: int) -> List[dict]:
    """``img_path`` and ``cls_labels`` of the first ``num`` split images."""
    ds = _dataset_cfg(cfg)
    ds.update(ann_file=split, pipeline=[], test_mode=True)
    dataset = DATASETS.build(ds)
    items = []
    for i in range(min(num, len(dataset))):
        info = dataset.get_data_info(i)
        if 'cls_labels' not in info:
            raise KeyError(f'{split}: image {info["img_path"]} has no '
                           'image-level labels (cls_labels)')
        items.append(
            dict(img_path=info['img_path'], cls_labels=info['cls_labels']))
    return items


def _labels_from_names(names: str, classes: Sequence[str]) -> np.ndarray:
    fg = list(classes[1:])
    vec = np.zeros(len(fg), np.float32)
    for name in (n.strip() for n in names.split(',') if n.strip()):
        if name not in fg:
            raise ValueError(f'--labels: unknown class {name!r}; the '
                             f'classes are {fg}')
        vec[fg.index(name)] = 1.
    if not vec.any():
        raise ValueError('--labels names no class')
    return vec


def _label_file_lookup(cfg: Config) -> Dict[str, np.ndarray]:
    from mmseg_dupl.datasets.cls_labels import load_cls_labels
    ds = _dataset_cfg(cfg)
    path = ds.get('cls_label_file')
    if not path:
        return {}
    if ds.get('data_root') and not osp.isabs(path):
        path = osp.join(ds['data_root'], path)
    return load_cls_labels(path) if osp.isfile(path) else {}


def image_items(cfg: Config, images: Sequence[str], labels: Optional[str],
                classes: Sequence[str]) -> List[dict]:
    """``img_path`` and ``cls_labels`` of files given on the command line."""
    if labels:
        vec = _labels_from_names(labels, classes)
        return [dict(img_path=p, cls_labels=vec) for p in images]
    lookup = _label_file_lookup(cfg)
    items, missing = [], []
    for path in images:
        name = osp.splitext(osp.basename(path))[0]
        if name in lookup:
            items.append(dict(img_path=path, cls_labels=lookup[name]))
        else:
            missing.append(path)
    if missing:
        raise KeyError(f'no image-level labels for {missing} in the '
                       "dataset's cls_label_file; pass --labels cls1,cls2")
    return items


def build_test_pipeline(cfg: Config) -> Compose:
    """The test pipeline without ``Load(Checked)Annotations``."""
    pipeline = [
        t for t in _dataset_cfg(cfg)['pipeline']
        if str(t.get('type', '')).split('.')[-1] not in (
            'LoadAnnotations', 'LoadCheckedAnnotations')
    ]
    return Compose(pipeline)


def _crop_padding(x: torch.Tensor, meta: dict) -> torch.Tensor:
    left, right, top, bottom = meta.get('padding_size', [0] * 4)
    return x[..., top:x.shape[-2] - bottom, left:x.shape[-1] - right]


def student_cams(model, inputs: torch.Tensor, meta: dict) -> List[np.ndarray]:
    """Multi-scale CAMs (C, H0, W0) in [0, 1] of every student."""
    from mmseg_dupl.models.cam.multi_scale import multi_scale_cam
    out = []
    for student in model.students:
        cam = multi_scale_cam(student.cams, inputs,
                              model.test_cfg['cam_scales'])[0]
        cam = F.interpolate(
            _crop_padding(cam, meta),
            size=tuple(meta['ori_shape'][:2]),
            mode='bilinear',
            align_corners=False)
        out.append(cam[0].clamp(0, 1).cpu().numpy())
    return out


def predicted_label(model, inputs, samples, predict_on: str) -> np.ndarray:
    """``model.predict`` with ``test_cfg.predict_on`` (H0, W0)."""
    old = model.test_cfg['predict_on']
    model.test_cfg['predict_on'] = predict_on
    try:
        out = model.predict(inputs, copy.deepcopy(samples))
    finally:
        model.test_cfg['predict_on'] = old
    return out[0].pred_sem_seg.data[0].cpu().numpy()


def _caption(panel: np.ndarray, text: str) -> np.ndarray:
    bar = np.full((CAPTION_H, panel.shape[1], 3), 255, np.uint8)
    cv2.putText(bar, text, (2, CAPTION_H - 4), cv2.FONT_HERSHEY_SIMPLEX,
                0.35, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([bar, panel], axis=0)


def draw_row(image: np.ndarray, cams: List[np.ndarray], present: np.ndarray,
             cam_label: np.ndarray, pseudo: np.ndarray,
             classes: Sequence[str], palette, alpha: float) -> np.ndarray:
    """One captioned row of panels (see the module docstring)."""
    from mmseg_dupl.visualization import (cam_to_heatmap, colorize_label,
                                          make_grid, overlay)
    panels = [_caption(image, 'image')]
    for k, cam in enumerate(cams, start=1):
        for c in np.flatnonzero(present):
            heat = overlay(image, cam_to_heatmap(cam[c]), alpha)
            panels.append(_caption(heat, f's{k} {classes[c + 1]}'))
    panels.append(_caption(colorize_label(cam_label, palette), 'CAM label'))
    panels.append(_caption(colorize_label(pseudo, palette), 'pseudo label'))
    return make_grid(panels, ncols=len(panels))


def visualize(model, pipeline: Compose, item: dict, classes, palette,
              alpha: float) -> np.ndarray:
    """The row of one image."""
    data = pseudo_collate([pipeline(dict(item))])
    data = model.data_preprocessor(data, False)
    inputs, samples = data['inputs'], data['data_samples']
    meta = samples[0].metainfo
    with torch.no_grad():
        cams = student_cams(model, inputs, meta)
        cam_label = predicted_label(model, inputs, samples, 'cam')
        pseudo = predicted_label(model, inputs, samples, 'pseudo')
    bgr = cv2.imread(item['img_path'], cv2.IMREAD_COLOR)
    image = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    present = np.asarray(item['cls_labels']) > 0
    return draw_row(image, cams, present, cam_label, pseudo, classes,
                    palette, alpha)


def main(argv: Optional[List[str]] = None) -> List[str]:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    classes, palette = dataset_meta(cfg)
    if args.images:
        items = image_items(cfg, args.images, args.labels, classes)
    else:
        items = split_items(cfg, args.split, args.num)
    from mmseg_dupl.models.schedules import trained_iteration
    model = MODELS.build(cfg.model)
    state = load_checkpoint(
        model, args.checkpoint, map_location='cpu', strict=True)
    # label with the thresholds of the checkpoint's last iteration (its
    # schedule's end for a checkpoint without meta.iter)
    trained = trained_iteration(state)
    model.follow_schedule(model.schedule.phases['end']
                          if trained is None else trained)
    model = model.to(args.device).eval()
    pipeline = build_test_pipeline(cfg)
    os.makedirs(args.out_dir, exist_ok=True)
    written = []
    for item in items:
        row = visualize(model, pipeline, item, classes, palette, args.alpha)
        name = osp.splitext(osp.basename(item['img_path']))[0]
        path = osp.join(args.out_dir, name + '.png')
        cv2.imwrite(path, cv2.cvtColor(row, cv2.COLOR_RGB2BGR))
        written.append(path)
    print(f'wrote {len(written)} images to {args.out_dir}')
    return written


if __name__ == '__main__':
    main()
