# Copyright (c) OpenMMLab. All rights reserved.
"""Check a whole WSSS dataset split before a long run (tools/verify_dataset).

Every image is checked as the pipelines would read it, in parallel, and
every problem is collected instead of stopping at the first:

- the image decodes (``LoadCheckedImageFromFile``'s loader: missing,
  empty, truncated or undecodable files);
- its mask (splits with masks) exists, is a single-channel id map of the
  image's size and holds only class ids and the ignore index;
- it has a label in the label file (``cls_label_file``), and a training
  image's label is not empty (unless ``allow_empty_labels``);
- where the image has a mask, every foreground class of the mask is in
  its image-level label (a label that drops a class trains the CAMs to
  call that object background);
- the split file and the label file themselves are readable and well
  formed, and the split file lists each image once.
"""
import os.path as osp
from collections import Counter
from dataclasses import dataclass
from multiprocessing.pool import ThreadPool
from typing import Dict, Iterable, List, NamedTuple, Optional, Tuple

import numpy as np

from .cls_labels import load_cls_labels, read_mask
from .split_file import duplicated_entries, read_split_lines
from .transforms.load_checked_image import LoadCheckedImageFromFile


class Problem(NamedTuple):
    """One problem: its kind (for counts), the file and a description."""
    kind: str
    path: str
    detail: str


@dataclass
class SplitSpec:
    """What to check of one split, from a dataset config.

    Attributes:
        name (str): e.g. ``'train_dataloader'``.
        split_file (str): The image list (``ann_file``).
        img_dir (str): Image folder; ``seg_dir`` the mask folder or None.
        img_suffix (str): e.g. ``'.jpg'``; ``seg_suffix`` e.g. ``'.png'``.
        label_file (str | None): ``cls_label_file``.
        num_classes (int): Classes including the background.
        ignore_index (int): Ignored mask id.
        training (bool): Not ``test_mode`` and no ``allow_empty_labels``:
            images need a foreground class.
        classes (tuple[str]): Class names, id order (for messages).
    """
    name: str
    split_file: str
    img_dir: str
    seg_dir: Optional[str]
    img_suffix: str
    seg_suffix: str
    label_file: Optional[str]
    num_classes: int
    ignore_index: int
    training: bool
    classes: Tuple[str, ...] = ()


def _under(root: Optional[str], path: Optional[str]) -> Optional[str]:
    if path is None or not root or osp.isabs(path):
        return path
    return osp.join(root, path)


def split_spec(name: str, dataset_cfg: dict, dataset_cls) -> SplitSpec:
    """The :class:`SplitSpec` of a ``VOCWSSSDataset``-like config.

    Args:
        name (str): Label of the split in the report.
        dataset_cfg (dict): The ``dataset`` dict of a dataloader config.
        dataset_cls (type): Its registered class (for default classes and
            folders).

    Returns:
        SplitSpec: Paths resolved against ``data_root``.
    """
    root = dataset_cfg.get('data_root')
    prefix = dict(getattr(dataset_cls, 'DEFAULT_DATA_PREFIX', {}))
    prefix.update(dataset_cfg.get('data_prefix') or {})
    metainfo = dataset_cfg.get('metainfo') or {}
    classes = metainfo.get('classes', dataset_cls.METAINFO['classes'])
    with_seg = dataset_cfg.get('with_seg_map', True)
    return SplitSpec(
        name=name,
        split_file=_under(root, dataset_cfg['ann_file']),
        img_dir=_under(root, prefix.get('img_path', '')),
        seg_dir=_under(root, prefix.get('seg_map_path')) if with_seg else
        None,
        img_suffix=dataset_cfg.get('img_suffix', '.jpg'),
        seg_suffix=dataset_cfg.get('seg_map_suffix', '.png'),
        label_file=_under(root, dataset_cfg.get('cls_label_file')),
        num_classes=len(classes),
        ignore_index=dataset_cfg.get('ignore_index', 255),
        training=not dataset_cfg.get('test_mode', False)
        and not dataset_cfg.get('allow_empty_labels', False),
        classes=tuple(classes))


class ImageItem(NamedTuple):
    """What a worker checks of one image.

    Attributes:
        img_path (str): The image.
        mask_path (str | None): Its mask, None for a split without masks.
        label (np.ndarray | None): Its image-level label ``(C,)``, None
            without a label file or when the image has no label.
        spec (SplitSpec): The split (classes, ignore index, files).
    """
    img_path: str
    mask_path: Optional[str]
    label: Optional[np.ndarray]
    spec: SplitSpec


def check_image_and_mask(item: ImageItem) -> List[Problem]:
    """Problems of one image, its mask and its label (runs in a worker).

    Args:
        item (ImageItem): The files and the label to check.

    Returns:
        list[Problem]: Empty when all are fine.
    """
    spec = item.spec
    try:
        shape = LoadCheckedImageFromFile()(dict(img_path=item.img_path))[
            'ori_shape']
    except OSError as e:  # FileNotFoundError included
        return [Problem('image unreadable', item.img_path, str(e))]
    if item.mask_path is None:
        return []
    try:
        mask = read_mask(item.mask_path)
    except (OSError, ValueError) as e:
        return [Problem('mask unreadable', item.mask_path, str(e))]
    problems = []
    if mask.shape != shape:
        problems.append(Problem(
            'mask size differs from image', item.mask_path,
            f'mask {mask.shape[0]}x{mask.shape[1]}, image {item.img_path} '
            f'{shape[0]}x{shape[1]}'))
    ids = np.unique(mask)
    bad = ids[(ids >= spec.num_classes) & (ids != spec.ignore_index)]
    if bad.size:
        problems.append(Problem(
            'mask ids outside the classes', item.mask_path,
            f'ids {bad.tolist()} (valid: 0..{spec.num_classes - 1}, ignore '
            f'{spec.ignore_index})'))
    if item.label is not None:
        problems += _label_misses_mask_classes(item, ids)
    return problems


def _label_misses_mask_classes(item: ImageItem,
                               ids: np.ndarray) -> List[Problem]:
    """A foreground class of the mask that the image-level label lacks.

    The reverse (a labelled class with no pixel) is not a problem: VOC's
    labels come from the XML annotations, which also list objects the
    mask leaves unlabelled (255).
    """
    spec = item.spec
    fg = ids[(ids >= 1) & (ids < spec.num_classes)].astype(int)
    missing = [c for c in fg.tolist() if not item.label[c - 1]]
    if not missing:
        return []
    names = ', '.join(
        f'{c} {spec.classes[c]}' if c < len(spec.classes) else str(c)
        for c in missing)
    return [Problem(
        'mask class not in the image-level label', item.mask_path,
        f'class {names} in the mask but not in the label of '
        f'{osp.basename(item.img_path)} in {spec.label_file}')]


def _read_split(spec: SplitSpec) -> Tuple[List[str], List[Problem]]:
    """The names of the split file, and its problems (one per name listed
    more than once)."""
    if not osp.isfile(spec.split_file):
        return [], [Problem('split file missing', spec.split_file, '')]
    lines = read_split_lines(spec.split_file)
    if not lines:
        return [], [Problem('split file empty', spec.split_file, '')]
    problems = [
        Problem('split entry duplicated', spec.split_file,
                f'{name} on lines {", ".join(map(str, numbers))}')
        for name, numbers in duplicated_entries(lines).items()
    ]
    return [name for _, name in lines], problems


def check_labels(
        spec: SplitSpec,
        names: List[str]) -> Tuple[Dict[str, np.ndarray], List[Problem]]:
    """Label-file problems: unreadable or malformed file, images without a
    label, training images without a foreground class.

    Returns:
        tuple: The labels of the file (empty without one or when it cannot
        be read), and the problems.
    """
    if spec.label_file is None:
        return {}, []
    try:
        labels = load_cls_labels(spec.label_file, spec.num_classes - 1)
    except (OSError, ValueError) as e:
        return {}, [Problem('label file malformed', spec.label_file,
                            str(e))]
    problems = [Problem('image without a label', name,
                        f'not in {spec.label_file}')
                for name in names if name not in labels]
    if spec.training:
        problems += [Problem('training image with an empty label', name,
                             f'{spec.label_file} (allow_empty_labels)')
                     for name in names
                     if name in labels and not labels[name].any()]
    return labels, problems


def check_split(spec: SplitSpec, workers: int) -> Tuple[int, List[Problem]]:
    """All problems of one split.

    Args:
        spec (SplitSpec): The split.
        workers (int): Threads decoding images and masks. Threads, not
            forked processes: a process forked from a caller that runs
            threads (torch's, a test runner's) can inherit a held lock and
            hang for ever (seen in the test suite); the decoders release
            the GIL.

    Returns:
        tuple: Number of images listed, and the problems.
    """
    names, problems = _read_split(spec)
    labels, label_problems = check_labels(spec, names)
    problems += label_problems
    items = [ImageItem(osp.join(spec.img_dir, n + spec.img_suffix),
                       osp.join(spec.seg_dir, n + spec.seg_suffix)
                       if spec.seg_dir else None, labels.get(n), spec)
             for n in dict.fromkeys(names)]  # a repeated name once
    with ThreadPool(workers) as pool:
        for found in pool.imap_unordered(check_image_and_mask, items,
                                         chunksize=32):
            problems += found
    return len(names), problems


def format_report(results: Dict[str, Tuple[int, List[Problem]]],
                  max_listed: int) -> Iterable[str]:
    """Lines of the report: per split, counts per kind and examples."""
    for name, (count, problems) in results.items():
        yield f'{name}: {count} images, {len(problems)} problems'
        kinds = Counter(p.kind for p in problems)
        for kind, n in sorted(kinds.items()):
            yield f'  {kind}: {n}'
            listed = [p for p in problems if p.kind == kind][:max_listed]
            for p in sorted(listed):
                yield f'    {p.path}' + (f': {p.detail}' if p.detail else '')
            if n > len(listed):
                yield f'    ... {n - len(listed)} more'
