# Copyright (c) OpenMMLab. All rights reserved.
"""mmseg's LoadAnnotations with a check of the mask's ids and size."""
import os.path as osp
from typing import Optional

import numpy as np
from mmseg.datasets.transforms import LoadAnnotations
from mmseg.registry import TRANSFORMS


@TRANSFORMS.register_module()
class LoadCheckedAnnotations(LoadAnnotations):
    """Load ``gt_seg_map`` and refuse a mask that would skew the metric.

    mmseg's ``IoUMetric`` silently drops pixels whose id is not a class
    (a val mask holding id 99 just changes mIoU), and a mask of another
    size than its image fails deep in the metric with an ``IndexError``
    that names no file. A mask that cannot be read (missing, empty,
    undecodable) fails in the decoder with, e.g.,
    ``PIL.UnidentifiedImageError: cannot identify image file
    <_io.BytesIO ...>``. Here a mask that cannot be read raises
    ``OSError`` (``FileNotFoundError`` when missing) naming it, and the
    checks below raise ``ValueError`` naming it:

    - every id must be a class index (``0 .. num_classes - 1``) or
      ``ignore_index``;
    - the mask must have the size of the image as loaded
      (``ori_shape``, set by the image loading transform, which must come
      first).

    ``num_classes`` and ``ignore_index`` default to the data info's
    ``seg_num_classes`` / ``seg_ignore_index``, which ``VOCWSSSDataset``
    (and so ``COCOWSSSDataset``) set from its classes and
    ``ignore_index``; without either, the id check is skipped.

    Args:
        num_classes (int, optional): Number of classes including the
            background. Defaults to None (from the data info).
        ignore_index (int, optional): The ignored id. Defaults to None
            (from the data info, else 255).
        **kwargs: Those of mmseg's ``LoadAnnotations``.
    """

    def __init__(self,
                 num_classes: Optional[int] = None,
                 ignore_index: Optional[int] = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.ignore_index = ignore_index

    def _load_seg_map(self, results: dict) -> None:
        """Load the mask (mmseg), then check its size and ids."""
        self._read_seg_map(results)
        mask, path = results['gt_seg_map'], results['seg_map_path']
        shape = results.get('ori_shape')
        if shape is not None and tuple(mask.shape[:2]) != tuple(shape[:2]):
            raise ValueError(
                f'segmentation mask {path} is {mask.shape[0]}x'
                f'{mask.shape[1]} (HxW) but its image '
                f'{results.get("img_path", "?")} is {shape[0]}x{shape[1]}')
        num_classes = self.num_classes or results.get('seg_num_classes')
        if num_classes is None:
            return
        ignore = self.ignore_index
        if ignore is None:
            ignore = results.get('seg_ignore_index', 255)
        counts = np.bincount(mask.ravel(), minlength=256)
        counts[:num_classes] = 0
        counts[ignore] = 0
        bad = np.flatnonzero(counts)
        if bad.size:
            raise ValueError(
                f'segmentation mask {path}: class ids {bad.tolist()} are '
                f'outside the dataset (0..{num_classes - 1} and ignore '
                f'{ignore}; {int(counts.sum())} pixels)')

    def _read_seg_map(self, results: dict) -> None:
        """mmseg's ``_load_seg_map``; a file it cannot read is named."""
        path = results['seg_map_path']
        try:
            super()._load_seg_map(results)
        except AssertionError:  # mmseg's reduce_zero_label consistency
            raise
        except FileNotFoundError as e:
            raise FileNotFoundError(
                f'segmentation mask not found: {path} ({e})') from e
        except Exception as e:  # each decoder raises its own types
            size = f' ({osp.getsize(path)} bytes)' if osp.isfile(
                str(path)) else ''
            raise OSError(f'cannot read segmentation mask {path}{size}: '
                          f'{type(e).__name__}: {e}') from e

    def __repr__(self) -> str:
        return (f'{super().__repr__()[:-1]}, num_classes={self.num_classes}, '
                f'ignore_index={self.ignore_index})')
