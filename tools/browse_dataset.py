# Copyright (c) OpenMMLab. All rights reserved.
"""Draw what a config's training pipeline feeds the model: each sample's
weak and strong views side by side, with its image-level labels.

mmseg 1.2.2's ``tools/analysis_tools/browse_dataset.py`` expects one
``(3, H, W)`` tensor per sample and stops on DuPL's two-view samples
(``'dict' object has no attribute 'permute'``). This tool draws every
branch of a ``MultiBranch`` sample (a plain sample as one view, its mask
overlaid when the pipeline loads one) with mmseg's ``SegLocalVisualizer``.

    python tools/browse_dataset.py configs/dupl_vit-tiny_toy.py \\
        --output-dir work_dirs/browse --num 8
"""
import argparse
import os
import os.path as osp
import sys
from typing import Dict, List

import mmcv
import numpy as np
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope

# Run from a checkout without installing the package.
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Draw the training pipeline\'s views of a dataset')
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        '--output-dir', required=True, help='where the PNGs are written')
    parser.add_argument(
        '--num', type=int, default=8, help='samples to draw (default 8)')
    parser.add_argument(
        '--split',
        choices=['train', 'val', 'test'],
        default='train',
        help='whose dataloader\'s dataset and pipeline (default train)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings (key=value)')
    return parser.parse_args(argv)


def views(item: dict) -> Dict[str, tuple]:
    """``{branch: (inputs (3, H, W), data_sample)}`` of a pipeline output;
    a plain sample is the branch ``'image'``."""
    inputs, samples = item['inputs'], item['data_samples']
    if isinstance(inputs, dict):
        return {b: (inputs[b], samples[b]) for b in inputs
                if inputs[b] is not None}
    return {'image': (inputs, samples)}


def draw_view(visualizer, name: str, inputs, sample,
              classes: List[str]) -> np.ndarray:
    """One view as an RGB array: the image, its mask if loaded, and the
    branch name with the image-level labels on top."""
    image = inputs.permute(1, 2, 0).numpy()[..., ::-1].copy()  # BGR->RGB
    if 'gt_sem_seg' in sample:  # a supervised pipeline: the mask on top
        visualizer.add_datasample(
            name, image, sample, draw_gt=True, draw_pred=False, show=False)
        drawn = visualizer.get_image()
    else:  # WSSS training views carry image labels only
        drawn = image
    labels = sample.metainfo.get('cls_labels')
    text = name
    if labels is not None:
        present = [classes[i + 1] for i in np.flatnonzero(labels)]
        text += ': ' + ', '.join(present)
    visualizer.set_image(drawn)
    visualizer.draw_texts(
        text, np.array([2, 2]), font_sizes=8, colors='white',
        bboxes=dict(facecolor='black', alpha=0.6, pad=1))
    return visualizer.get_image()


def side_by_side(images: List[np.ndarray], gap: int = 4) -> np.ndarray:
    """Concatenate RGB images left to right, padded to the tallest."""
    height = max(i.shape[0] for i in images)
    padded = []
    for image in images:
        pad = np.zeros((height, image.shape[1] + gap, 3), np.uint8)
        pad[:image.shape[0], :image.shape[1]] = image
        padded.append(pad)
    return np.concatenate(padded, axis=1)[:, :-gap]


def main(argv=None) -> List[str]:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    from mmseg.registry import DATASETS, VISUALIZERS
    dataset = DATASETS.build(cfg[f'{args.split}_dataloader'].dataset)
    vis_cfg = dict(cfg.visualizer)
    vis_cfg.update(name='browse_dataset', vis_backends=None, save_dir=None)
    visualizer = VISUALIZERS.build(vis_cfg)
    visualizer.dataset_meta = dataset.metainfo
    classes = list(dataset.metainfo['classes'])
    os.makedirs(args.output_dir, exist_ok=True)
    written = []
    for index in range(min(args.num, len(dataset))):
        item = dataset[index]
        drawn = [
            draw_view(visualizer, branch, inputs, sample, classes)
            for branch, (inputs, sample) in views(item).items()
        ]
        any_sample = next(iter(views(item).values()))[1]
        stem = osp.splitext(osp.basename(any_sample.img_path))[0]
        path = osp.join(args.output_dir, f'{index:04d}_{stem}.png')
        mmcv.imwrite(side_by_side(drawn)[..., ::-1], path)  # RGB->BGR
        written.append(path)
    print(f'{len(written)} samples ({", ".join(views(item))}) written to '
          f'{args.output_dir}')
    return written


if __name__ == '__main__':
    main()
