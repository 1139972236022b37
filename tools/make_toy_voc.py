# Copyright (c) OpenMMLab. All rights reserved.
"""Generate the synthetic toy dataset in the Pascal VOC layout, or in the
COCO WSSS layout (``--layout coco``: ``JPEGImages/train2014``, ``val2014``,
``train.txt``, ``val_part.txt``; see ``toy_voc_data.to_coco_layout``).

Example::

    python tools/make_toy_voc.py --out data/toy_voc --seed 0
    python tools/make_toy_voc.py --out data/toy_coco --layout coco

See ``tools/toy_voc_data.py`` for what the scenes contain.
"""
import argparse
import json
import os.path as osp
import sys
import time

# Run from a checkout without installing the package.
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from toy_voc_data import make_toy_voc, to_coco_layout  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Generate the toy VOC-layout WSSS dataset')
    parser.add_argument('--out', default='data/toy_voc', help='output dir')
    parser.add_argument('--num-train', type=int, default=400)
    parser.add_argument('--num-val', type=int, default=100)
    parser.add_argument('--num-test', type=int, default=20)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--size-range',
        type=int,
        nargs=2,
        default=(96, 192),
        metavar=('MIN', 'MAX'),
        help='range of each image side in pixels')
    parser.add_argument(
        '--boat-on-water',
        type=float,
        default=0.9,
        help='P(water background | boat in the image)')
    parser.add_argument(
        '--water-without-boat',
        type=float,
        default=0.05,
        help='P(water background | no boat)')
    parser.add_argument(
        '--layout',
        choices=['voc', 'coco'],
        default='voc',
        help='voc: VOC 2012 folders (ImageSets/Segmentation/*.txt); coco: '
        'the COCO 2014 WSSS layout of configs/dupl_vit-b_coco.py')
    parser.add_argument(
        '--overwrite',
        action='store_true',
        help='replace a toy dataset already in --out')
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    start = time.perf_counter()
    summary = make_toy_voc(
        args.out,
        num_train=args.num_train,
        num_val=args.num_val,
        num_test=args.num_test,
        seed=args.seed,
        size_range=tuple(args.size_range),
        boat_on_water=args.boat_on_water,
        water_without_boat=args.water_without_boat,
        overwrite=args.overwrite)
    if args.layout == 'coco':
        summary['coco_layout'] = to_coco_layout(args.out)
    seconds = time.perf_counter() - start
    for key, value in sorted(summary.items()):
        print(f'{key}: {json.dumps(value)}')
    print(f'toy dataset ({args.layout} layout) written to '
          f'{summary["out_dir"]}: '
          f'{summary["bytes_on_disk"] / 2**20:.1f} MiB in {seconds:.1f} s')
    return summary


if __name__ == '__main__':
    main()
