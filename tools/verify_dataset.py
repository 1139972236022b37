# Copyright (c) OpenMMLab. All rights reserved.
"""Check every image, mask and label of a config's datasets before a run.

Example::

    python tools/verify_dataset.py configs/dupl_vit-b_voc.py --workers 8

Checks the datasets of ``train_dataloader``, ``val_dataloader`` and
``test_dataloader`` (each distinct split once) in parallel: images decode,
masks exist with the image's size and only class ids / the ignore index,
every image has a label in ``cls_label_file`` (training images a
non-empty one) that holds every foreground class of its mask (where there
is a mask), the split file lists each image once, and the split and label
files are well formed (:mod:`mmseg_dupl.datasets.dataset_check`). Prints
every problem kind with its count and examples; exits 1 when there is any
problem.
"""
import argparse
import os
import os.path as osp
import sys
import time

from mmengine.config import Config, DictAction

# Run from a checkout without installing the package.
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmseg.registry import DATASETS  # noqa: E402
from mmseg_dupl.datasets.dataset_check import (  # noqa: E402
    check_split, format_report, split_spec)

LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Check a config\'s datasets before a long run')
    parser.add_argument('config', help='config file')
    parser.add_argument(
        '--workers',
        type=int,
        default=os.cpu_count(),
        help='threads that decode images and masks (default: all CPUs)')
    parser.add_argument(
        '--max-listed',
        type=int,
        default=10,
        help='files listed per problem kind and split')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, as in tools/train.py')
    return parser.parse_args(argv)


def _specs(cfg: Config) -> list:
    """One spec per distinct split of the three dataloaders."""
    specs, seen = [], set()
    for loader in LOADERS:
        dataset = cfg.get(loader, {}).get('dataset')
        if not dataset:
            continue
        spec = split_spec(loader, dataset, DATASETS.get(dataset['type']))
        key = (spec.split_file, spec.img_dir, spec.seg_dir, spec.label_file)
        if key not in seen:
            seen.add(key)
            specs.append(spec)
    return specs


def main(argv=None) -> int:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    start = time.perf_counter()
    results, total = {}, 0
    for spec in _specs(cfg):
        results[f'{spec.name} ({spec.split_file})'] = check_split(
            spec, max(1, args.workers))
        total += results[f'{spec.name} ({spec.split_file})'][0]
    for line in format_report(results, args.max_listed):
        print(line)
    problems = sum(len(p) for _, p in results.values())
    print(f'checked {total} images with {args.workers} workers in '
          f'{time.perf_counter() - start:.1f} s: {problems} problems')
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
