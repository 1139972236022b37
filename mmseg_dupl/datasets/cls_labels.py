# Copyright (c) OpenMMLab. All rights reserved.
"""Image-level (multi-hot) class labels: load, derive from masks, write.

Two file formats, chosen by the suffix:

- ``.npy``, the official one used by PSA, AFA, ToCo and DuPL
  (``datasets/voc/cls_labels_onehot.npy``): ``np.save(path, d)`` of a
  Python dict mapping an image name without suffix (``'2007_000032'``) to a
  multi-hot vector of length C (20 for VOC, 80 for COCO). It is a pickle;
  it is read with :func:`mmseg_dupl.utils.safe_npy.load_pickled_npy`, which
  builds only dicts, strings and numpy arrays, so a crafted file raises an
  error naming it instead of running code.
- ``.npz``, pickle-free: ``names`` (a unicode array of N image names) and
  ``labels`` (an ``(N, C)`` numeric matrix), read with
  ``allow_pickle=False``.

Entry ``c`` of a vector is 1 when foreground class ``c + 1`` is present in
the image; background is not part of the vector. Values may be float or
integer; they are returned as float32.

``tools/make_cls_labels.py`` writes either format from segmentation masks.
"""
import os
import os.path as osp
from typing import Dict, Iterable, Mapping, Optional

import numpy as np
from PIL import Image

from mmseg_dupl.utils.safe_npy import load_pickled_npy

CLS_LABEL_SUFFIX = '.npy'  # the official pickled dict
NPZ_LABEL_SUFFIX = '.npz'  # pickle-free: names + (N, C) matrix


def load_cls_labels(path: str,
                    num_classes: Optional[int] = None
                    ) -> Dict[str, np.ndarray]:
    """Load a label file: official ``.npy`` dict or pickle-free ``.npz``.

    Args:
        path (str): Path of the ``.npy`` (``np.save`` of a dict) or
            ``.npz`` (``names`` + ``labels``) file.
        num_classes (int, optional): Expected vector length C. When given,
            a vector of another length raises. Defaults to None (only
            checks that all vectors share one length).

    Returns:
        Dict[str, np.ndarray]: image name -> float32 multi-hot ``(C,)``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: wrong suffix, unreadable or refused content (e.g. a
            pickle that would import a function), not a dict, or a vector
            that is not 1-D, not 0/1, or of the wrong length (the error
            names the file and the key).
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'cls label file not found: {path}')
    if not path.endswith((CLS_LABEL_SUFFIX, NPZ_LABEL_SUFFIX)):
        raise ValueError(
            f'cls label file {path} must be a {CLS_LABEL_SUFFIX} file '
            'written by np.save(path, dict(name=multi_hot)) (the official '
            f'cls_labels_onehot.npy format) or a {NPZ_LABEL_SUFFIX} file of '
            '"names" and "labels"; see tools/make_cls_labels.py')
    try:
        raw = _read_npz(path) if path.endswith(NPZ_LABEL_SUFFIX) else \
            _read_npy(path)
    except Exception as e:  # numpy/pickle raise several types
        raise ValueError(f'cannot read cls label file {path}: {e}') from e
    labels = {
        str(name): _check_vector(vec, f'{path}: key {name!r}')
        for name, vec in raw.items()
    }
    _check_lengths(labels, num_classes, path)
    return labels


def _read_npy(path: str) -> dict:
    """The dict of an official ``.npy`` file, unpickled safely."""
    obj = load_pickled_npy(path)
    raw = obj.item() if _is_pickled_object(obj) else None
    if not isinstance(raw, dict):
        raise ValueError(
            f'it does not hold a dict (got {type(obj).__name__}); '
            'expected np.save(path, dict(name=multi_hot))')
    return raw


def _read_npz(path: str) -> dict:
    """name -> row of a pickle-free ``.npz`` (``names``, ``labels``)."""
    with np.load(path, allow_pickle=False) as data:
        missing = {'names', 'labels'} - set(data.files)
        if missing:
            raise ValueError(f'arrays {sorted(missing)} are missing '
                             f'(found {sorted(data.files)})')
        names, matrix = data['names'], data['labels']
    if names.ndim != 1 or matrix.ndim != 2 or len(names) != len(matrix):
        raise ValueError(
            f'expected names (N,) and labels (N, C), got {names.shape} and '
            f'{matrix.shape}')
    if len(set(names.tolist())) != len(names):
        raise ValueError('names holds duplicates')
    return dict(zip(names.tolist(), matrix))


def _is_pickled_object(obj) -> bool:
    """True for the 0-d object array that ``np.save(path, dict)`` gives."""
    return (isinstance(obj, np.ndarray) and obj.dtype == object
            and obj.shape == ())


def _check_vector(vec, where: str) -> np.ndarray:
    """Validate one multi-hot vector and return it as float32 ``(C,)``."""
    arr = np.asarray(vec)
    if arr.ndim != 1 or arr.dtype == object:
        raise ValueError(f'{where}: label must be a 1-D numeric vector, got '
                         f'shape {arr.shape} dtype {arr.dtype}')
    arr = arr.astype(np.float32)
    if not np.all((arr == 0) | (arr == 1)):
        raise ValueError(f'{where}: label must be multi-hot (0/1 values), '
                         f'got {arr.tolist()}')
    return arr


def _check_lengths(labels: Mapping[str, np.ndarray],
                   num_classes: Optional[int], path: str) -> None:
    """Check that every vector has length ``num_classes`` (or one length)."""
    expected = num_classes
    for name, vec in labels.items():
        if expected is None:
            expected = len(vec)
        if len(vec) != expected:
            raise ValueError(
                f'{path}: key {name!r} has a label vector of length '
                f'{len(vec)}, expected {expected} (foreground classes, '
                'background excluded)')


def cls_labels_from_mask(mask: np.ndarray,
                         num_classes: int,
                         ignore_index: int = 255,
                         path: Optional[str] = None) -> np.ndarray:
    """Multi-hot vector of the foreground classes present in a mask.

    Args:
        mask (np.ndarray): Label map ``(H, W)``, integer ids: 0 background,
            1..C classes, ``ignore_index`` ignored.
        num_classes (int): Number of foreground classes C.
        ignore_index (int): Id that is skipped. Defaults to 255.
        path (str, optional): File the mask came from, used in errors.

    Returns:
        np.ndarray: float32 ``(C,)``; entry ``c`` is 1 iff id ``c + 1``
        occurs in ``mask``.

    Raises:
        ValueError: the mask holds an id outside ``{0..C, ignore_index}``
            (e.g. a VOC mask read with COCO's class count, or an RGB colour
            mask).
    """
    ids = np.unique(np.asarray(mask))
    valid = (ids >= 0) & ((ids <= num_classes) | (ids == ignore_index))
    if not np.all(valid):
        where = path if path is not None else 'mask'
        raise ValueError(
            f'{where}: class ids {ids[~valid].tolist()} are outside the '
            f'dataset (0..{num_classes} and ignore {ignore_index})')
    fg = ids[(ids >= 1) & (ids <= num_classes)].astype(np.int64)
    out = np.zeros(num_classes, dtype=np.float32)
    out[fg - 1] = 1.0
    return out


def read_mask(path: str) -> np.ndarray:
    """Read a single-channel label PNG (VOC 'P' or 'L' mode) as ids.

    Args:
        path (str): Mask file.

    Returns:
        np.ndarray: uint8 ``(H, W)`` class ids (palette indices for 'P').

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file cannot be decoded or is not single-channel.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'segmentation mask not found: {path}')
    try:
        with Image.open(path) as img:
            img.load()
            mode = img.mode
            arr = np.array(img)
    except Exception as e:  # PIL raises OSError/SyntaxError/...
        raise ValueError(f'cannot decode segmentation mask {path}: {e}') \
            from e
    if arr.ndim != 2 or mode not in ('P', 'L'):
        raise ValueError(
            f'segmentation mask {path} must be a single-channel (P or L '
            f'mode) image of class ids, got mode {mode} shape {arr.shape}')
    return arr


def cls_labels_from_mask_files(names: Iterable[str],
                               mask_dir: str,
                               num_classes: int,
                               suffix: str = '.png',
                               ignore_index: int = 255
                               ) -> Dict[str, np.ndarray]:
    """Derive labels for many images by reading ``mask_dir/name+suffix``.

    Args:
        names (Iterable[str]): Image names without suffix.
        mask_dir (str): Folder of the masks.
        num_classes (int): Number of foreground classes C.
        suffix (str): Mask file suffix. Defaults to '.png'.
        ignore_index (int): Id that is skipped. Defaults to 255.

    Returns:
        Dict[str, np.ndarray]: name -> float32 multi-hot ``(C,)``.
    """
    labels = {}
    for name in names:
        path = osp.join(mask_dir, name + suffix)
        labels[name] = cls_labels_from_mask(
            read_mask(path), num_classes, ignore_index, path=path)
    return labels


def write_cls_labels(labels: Mapping[str, np.ndarray], path: str) -> str:
    """Write labels as the official ``.npy`` dict or a pickle-free ``.npz``.

    Vectors are stored as float32, as in PSA's ``make_cls_labels.py``. The
    file is written to a temporary name and renamed, so an interrupted run
    never leaves a half-written label file.

    Args:
        labels (Mapping[str, np.ndarray]): name -> multi-hot ``(C,)``.
        path (str): Output path; ``.npy`` (official, pickled dict) or
            ``.npz`` (``names`` + ``labels`` matrix, no pickle).

    Returns:
        str: ``path``.
    """
    suffix = osp.splitext(path)[1]
    if suffix not in (CLS_LABEL_SUFFIX, NPZ_LABEL_SUFFIX):
        raise ValueError(f'cls label file {path} must end with '
                         f'{CLS_LABEL_SUFFIX} or {NPZ_LABEL_SUFFIX} (numpy '
                         'would append its own suffix)')
    data = {
        str(k): _check_vector(v, f'{path}: key {k!r}')
        for k, v in labels.items()
    }
    _check_lengths(data, None, path)
    out_dir = osp.dirname(osp.abspath(path))
    os.makedirs(out_dir, exist_ok=True)
    tmp = path[:-len(suffix)] + '.tmp' + suffix
    if suffix == NPZ_LABEL_SUFFIX:
        matrix = np.stack(list(data.values())) if data else np.zeros((0, 0))
        np.savez(tmp, names=np.array(list(data), dtype=str),
                 labels=matrix.astype(np.float32))
    else:
        np.save(tmp, data, allow_pickle=True)
    os.replace(tmp, path)
    return path
