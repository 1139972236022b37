# Copyright (c) OpenMMLab. All rights reserved.
"""mmseg's LoadAnnotations with a check of the mask's ids and size."""
import os.path as osp
from typing import Optional

from mmseg.datasets.transforms import LoadAnnotations
from mmseg.registry import TRANSFORMS

from .check_seg_map import check_seg_map


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

    Eval pipelines use mmseg's ``LoadAnnotations`` followed by
    :class:`CheckSegMap` (the same checks) instead, so that mmseg's
    inference API finds the step names it edits.

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
        check_seg_map(results, self.num_classes, self.ignore_index)

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
