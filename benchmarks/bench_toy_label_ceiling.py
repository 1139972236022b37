# Copyright (c) OpenMMLab. All rights reserved.
"""The best seg mIoU a model with a given output stride can reach on toy val.

The oracle knows, for every token of the resized image, the fraction of
each class's pixels under it (the ground truth average-pooled to the token
grid). Its logits are those fractions, resized back to the image and
arg-maxed, as mmseg's postprocessing resizes a model's logits. So it is the
ceiling of any model that predicts one score per class per token and
upsamples bilinearly, at that evaluation size: thin structures (the
bicycle's 4-8 px frames and rings) are lost below it whatever the labels.

    python benchmarks/bench_toy_label_ceiling.py --data-root data/toy_voc
"""
import argparse
import json
import os.path as osp
from typing import Iterable, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from common import append_section, machine_info, markdown_table
from mmseg.evaluation import IoUMetric
from PIL import Image

IGNORE = 255


def token_oracle_prediction(gt: np.ndarray, size: Tuple[int, int],
                            stride: int, num_classes: int) -> np.ndarray:
    """The oracle's label map for one image.

    Args:
        gt (np.ndarray): Ground truth ``(H, W)``, class ids and 255.
        size (tuple[int, int]): Evaluation size ``(h, w)`` the image is
            resized to (nearest for the labels), divisible by ``stride``.
        stride (int): Output stride (the ViT's patch size).
        num_classes (int): Classes, background included.

    Returns:
        np.ndarray: Predicted ``(H, W)`` class ids.
    """
    label = torch.from_numpy(gt.astype(np.int64))[None, None].float()
    label = F.interpolate(label, size=size, mode='nearest')[0, 0].long()
    valid = (label != IGNORE).float()
    onehot = F.one_hot(label.clamp(max=num_classes - 1), num_classes)
    onehot = onehot.permute(2, 0, 1).float() * valid
    fractions = F.avg_pool2d(onehot[None], stride)
    logits = F.interpolate(fractions, size=gt.shape, mode='bilinear',
                           align_corners=False)
    return logits[0].argmax(0).numpy()


def iou_per_class(pairs: Iterable[Tuple[np.ndarray, np.ndarray]],
                  num_classes: int) -> np.ndarray:
    """IoU per class (fraction) over ``(prediction, ground truth)`` pairs,
    with mmseg's IoUMetric arithmetic (255 in the ground truth ignored)."""
    areas = [
        IoUMetric.intersect_and_union(
            torch.from_numpy(pred), torch.from_numpy(gt.astype(np.int64)),
            num_classes, IGNORE) for pred, gt in pairs
    ]
    totals = [sum(area) for area in zip(*areas)]
    return IoUMetric.total_area_to_metrics(*totals, ['mIoU'])['IoU']


def ceiling(data_root: str, split: str, size: int, stride: int,
            num_classes: int) -> np.ndarray:
    """Per-class IoU (%) of the oracle over a split."""
    with open(osp.join(data_root, 'ImageSets', 'Segmentation',
                       f'{split}.txt')) as f:
        names = [line.strip() for line in f if line.strip()]

    def pairs():
        for name in names:
            gt = np.array(Image.open(osp.join(
                data_root, 'SegmentationClass', name + '.png')))
            yield token_oracle_prediction(gt, (size, size), stride,
                                          num_classes), gt

    return 100 * iou_per_class(pairs(), num_classes)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--data-root', default='data/toy_voc')
    parser.add_argument('--split', default='val')
    parser.add_argument('--settings', nargs='+',
                        default=['128x8', '192x8', '256x8', '128x4',
                                 '128x16'],
                        help='SIZExSTRIDE pairs (the toy config: 128x8)')
    parser.add_argument('--no-write', action='store_true')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> List[Sequence]:
    args = parse_args(argv)
    info = machine_info()
    with open(osp.join(args.data_root, 'toy_voc_meta.json')) as f:
        classes = json.load(f)['classes']  # written by the generator
    rows = []
    for setting in args.settings:
        size, stride = (int(v) for v in setting.split('x'))
        iou = ceiling(args.data_root, args.split, size, stride, len(classes))
        rows.append([f'{size}x{size}', stride, f'{iou.mean():.1f}'] +
                    [f'{v:.1f}' for v in iou])
    table = markdown_table(['eval size', 'stride', 'mIoU'] + classes,
                           rows)
    print(table)
    if not args.no_write:
        body = (f'Toy `{args.split}` (`{args.data_root}`), the oracle of '
                '`token_oracle_prediction`: ground-truth class fractions '
                'per token, resized back bilinearly, arg-maxed. The toy '
                'config evaluates at 128x128 with stride 8 (patch 8): no '
                'model of that shape can exceed the first row.\n\n' + table)
        append_section('Toy seg ceiling at the token grid', body, info)
    return rows


if __name__ == '__main__':
    main()
