# Copyright (c) OpenMMLab. All rights reserved.
"""Lay out VOC test predictions for the PASCAL VOC evaluation server.

Input: the class-index PNGs that ``tools/test.py CONFIG CKPT --out DIR``
writes (one ``<name>.png`` per image, values 0..20), as a folder or a
single file. Output: ``OUT_DIR/results/VOC2012/Segmentation/comp6_test_cls/
<name>.png``, P-mode PNGs with the VOC palette, which is what the server
expects (``comp6``: trained without VOC-external pixel labels)::

    python tools/convert_voc_test_results.py work_dirs/voc_test_out \\
        work_dirs/voc_submission \\
        --split-file data/VOCdevkit/VOC2012/ImageSets/Segmentation/test.txt
    tar -czf results.tgz -C work_dirs/voc_submission results

Every input is checked before anything is written; errors name the files:
non-PNG files, colour (RGB) PNGs, class ids above 20 (or
``--num-classes - 1``; 255 included) and, with ``--split-file``, images of
the split without a prediction or predictions outside the split.
"""
import argparse
import os
import os.path as osp
import sys
from typing import Dict, List, Optional, Sequence

import numpy as np
from PIL import Image

from mmseg_dupl.visualization.palette import voc_colormap

RESULT_SUBDIR = osp.join('results', 'VOC2012', 'Segmentation',
                         'comp6_test_cls')
_MAX_LISTED = 10
_INDEX_MODES = ('L', 'P', 'I', 'I;16')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert VOC test predictions (class-index PNGs) to '
        'the evaluation server layout')
    parser.add_argument(
        'in_dir', help='folder of <name>.png class-index maps, or one PNG')
    parser.add_argument(
        'out_dir', help='output root; results/VOC2012/... is created in it')
    parser.add_argument(
        '--split-file',
        help='image list (e.g. ImageSets/Segmentation/test.txt): every '
        'listed image must have a prediction, and no other may be given')
    parser.add_argument(
        '--num-classes',
        type=int,
        default=21,
        help='classes including background (ids 0..N-1). Default: 21')
    return parser.parse_args(argv)


def _listing(items: Sequence[str]) -> str:
    shown = ', '.join(items[:_MAX_LISTED])
    more = ', ...' if len(items) > _MAX_LISTED else ''
    return f'{shown}{more} ({len(items)} in total)'


def find_predictions(in_path: str) -> Dict[str, str]:
    """``{name: path}`` of the PNGs of a folder (or of one PNG file).

    Raises:
        FileNotFoundError: ``in_path`` does not exist or has no PNG.
        ValueError: the folder holds non-PNG files (listed).
    """
    if osp.isfile(in_path):
        files = [in_path]
    elif osp.isdir(in_path):
        files = sorted(
            osp.join(in_path, f) for f in os.listdir(in_path)
            if not f.startswith('.') and osp.isfile(osp.join(in_path, f)))
    else:
        raise FileNotFoundError(f'input not found: {in_path}')
    bad = [f for f in files if not f.lower().endswith('.png')]
    if bad:
        raise ValueError(f'not PNG files (expected <name>.png class-index '
                         f'maps from tools/test.py --out): {_listing(bad)}')
    if not files:
        raise FileNotFoundError(f'no PNG predictions in {in_path}')
    return {osp.splitext(osp.basename(f))[0]: f for f in files}


def read_prediction(path: str, num_classes: int) -> np.ndarray:
    """The ``(H, W)`` uint8 class ids of one PNG.

    Raises:
        ValueError: the file is not a readable class-index PNG or holds
            ids >= ``num_classes``; the message names the file.
    """
    try:
        with Image.open(path) as img:
            if img.format != 'PNG':
                raise ValueError(f'{path}: not a PNG ({img.format})')
            if img.mode not in _INDEX_MODES:
                raise ValueError(
                    f'{path}: mode {img.mode} is not a class-index map '
                    '(a colour visualisation?); use tools/test.py --out')
            ids = np.array(img)
    except (OSError, SyntaxError) as err:
        raise ValueError(f'{path}: cannot read as PNG: {err}') from err
    bad = np.unique(ids[ids >= num_classes])
    if bad.size:
        raise ValueError(f'{path}: class ids {bad.tolist()} outside 0..'
                         f'{num_classes - 1}')
    return ids.astype(np.uint8)


def check_split(names: Sequence[str], split_file: str) -> None:
    """Predictions must cover the split exactly."""
    with open(split_file) as f:
        wanted = [ln.split()[0] for ln in f if ln.strip()]
    missing = sorted(set(wanted) - set(names))
    extra = sorted(set(names) - set(wanted))
    errors = []
    if missing:
        errors.append(f'images of {split_file} without a prediction: '
                      f'{_listing(missing)}')
    if extra:
        errors.append(f'predictions not in {split_file}: {_listing(extra)}')
    if errors:
        raise ValueError('; '.join(errors))


def convert(in_path: str,
            out_dir: str,
            split_file: Optional[str] = None,
            num_classes: int = 21) -> List[str]:
    """Check every prediction, then write the server layout.

    Returns:
        list[str]: The written files.
    """
    preds = find_predictions(in_path)
    if split_file:
        check_split(list(preds), split_file)
    errors = []
    for path in preds.values():
        try:
            read_prediction(path, num_classes)
        except ValueError as err:
            errors.append(str(err))
    if errors:
        raise ValueError(f'{len(errors)} bad prediction file(s):\n' +
                         '\n'.join(errors[:_MAX_LISTED]))
    target = osp.join(out_dir, RESULT_SUBDIR)
    os.makedirs(target, exist_ok=True)
    palette = voc_colormap(256).flatten().tolist()
    written = []
    for name, path in preds.items():
        img = Image.fromarray(read_prediction(path, num_classes))
        img.putpalette(palette)  # 'L' -> 'P', pixel values unchanged
        out = osp.join(target, name + '.png')
        img.save(out)
        written.append(out)
    return written


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    try:
        written = convert(args.in_dir, args.out_dir, args.split_file,
                          args.num_classes)
    except (ValueError, FileNotFoundError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    print(f'wrote {len(written)} predictions to '
          f'{osp.join(args.out_dir, RESULT_SUBDIR)}\n'
          f'archive: tar -czf results.tgz -C {args.out_dir} results')
    return 0


if __name__ == '__main__':
    sys.exit(main())
