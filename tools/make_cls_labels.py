# Copyright (c) OpenMMLab. All rights reserved.
"""Write image-level labels (official ``cls_labels_onehot.npy``) from masks.

Example (VOC 2012 + SBD)::

    python tools/make_cls_labels.py data/VOCdevkit/VOC2012 \\
        --split-file ImageSets/Segmentation/train_aug.txt \\
        --split-file ImageSets/Segmentation/val.txt \\
        --mask-dir SegmentationClassAug --num-classes 20 \\
        --out cls_labels_onehot.npy

Relative ``--split-file``, ``--mask-dir`` and ``--out`` paths are taken
relative to ``data_root``. ``--out`` ending in ``.npz`` writes the
pickle-free format (``names`` + ``labels`` matrix) instead of the official
pickled ``.npy`` dict; the datasets read both (``cls_label_file``). Each mask must hold ids 0..C and 255 (ignore);
any other id raises an error naming the file.
"""
import argparse
import os.path as osp
import sys
import time

# Run from a checkout without installing the package.
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmseg_dupl.datasets.cls_labels import (  # noqa: E402
    cls_labels_from_mask_files, write_cls_labels)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Derive multi-hot image labels from segmentation masks')
    parser.add_argument('data_root', help='dataset root folder')
    parser.add_argument(
        '--split-file',
        action='append',
        required=True,
        help='list of image names (one per line, no suffix); repeat the '
        'option to merge several splits into one file')
    parser.add_argument(
        '--mask-dir', default='SegmentationClassAug', help='mask folder')
    parser.add_argument('--mask-suffix', default='.png')
    parser.add_argument(
        '--num-classes',
        type=int,
        default=20,
        help='foreground classes C (20 VOC, 80 COCO)')
    parser.add_argument('--ignore-index', type=int, default=255)
    parser.add_argument(
        '--out',
        default='cls_labels_onehot.npy',
        help='output file: .npy (official pickled dict) or .npz '
        '(pickle-free names + labels matrix)')
    return parser.parse_args(argv)


def _under(root: str, path: str) -> str:
    return path if osp.isabs(path) else osp.join(root, path)


def read_names(path: str) -> list:
    """Image names of a split file (first token per non-empty line)."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'split file not found: {path}')
    with open(path) as f:
        return [ln.split()[0] for ln in f if ln.strip()]


def main(argv=None) -> dict:
    args = parse_args(argv)
    start = time.perf_counter()
    names = []
    for split in args.split_file:
        names += read_names(_under(args.data_root, split))
    names = list(dict.fromkeys(names))  # merged splits, first order kept
    labels = cls_labels_from_mask_files(
        names, _under(args.data_root, args.mask_dir), args.num_classes,
        args.mask_suffix, args.ignore_index)
    out = write_cls_labels(labels, _under(args.data_root, args.out))
    empty = [n for n, v in labels.items() if not v.any()]
    print(f'wrote {len(labels)} labels ({args.num_classes} classes) to '
          f'{out} in {time.perf_counter() - start:.1f} s')
    if empty:
        print(f'warning: {len(empty)} images have no foreground class, '
              f'e.g. {empty[:5]}; VOCWSSSDataset refuses them for '
              'training unless allow_empty_labels=True')
    return labels


if __name__ == '__main__':
    main()
