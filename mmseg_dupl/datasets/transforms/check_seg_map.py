# Copyright (c) OpenMMLab. All rights reserved.
"""A check of loaded masks that leaves mmseg's loader names in place."""
from typing import Optional

import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS


def check_seg_map(results: dict,
                  num_classes: Optional[int] = None,
                  ignore_index: Optional[int] = None) -> None:
    """Raise ``ValueError`` naming the mask when ``results['gt_seg_map']``
    has another size than its image or ids outside the classes.

    Args:
        results (dict): Pipeline results with ``gt_seg_map`` ``(H, W)``,
            ``seg_map_path`` and, from the image loader, ``ori_shape``.
        num_classes (int, optional): Classes including the background;
            None takes the data info's ``seg_num_classes`` (no id check
            without either).
        ignore_index (int, optional): The ignored id; None takes the data
            info's ``seg_ignore_index``, else 255.
    """
    mask, path = results['gt_seg_map'], results.get('seg_map_path', '?')
    shape = results.get('ori_shape')
    if shape is not None and tuple(mask.shape[:2]) != tuple(shape[:2]):
        raise ValueError(
            f'segmentation mask {path} is {mask.shape[0]}x{mask.shape[1]} '
            f'(HxW) but its image {results.get("img_path", "?")} is '
            f'{shape[0]}x{shape[1]}')
    num_classes = num_classes or results.get('seg_num_classes')
    if num_classes is None:
        return
    if ignore_index is None:
        ignore_index = results.get('seg_ignore_index', 255)
    counts = np.bincount(mask.ravel(), minlength=256)
    counts[:num_classes] = 0
    counts[ignore_index] = 0
    bad = np.flatnonzero(counts)
    if bad.size:
        raise ValueError(
            f'segmentation mask {path}: class ids {bad.tolist()} are outside '
            f'the dataset (0..{num_classes - 1} and ignore {ignore_index}; '
            f'{int(counts.sum())} pixels)')


@TRANSFORMS.register_module()
class CheckSegMap(BaseTransform):
    """Refuse a ``gt_seg_map`` that would skew the metric; place it after
    mmseg's ``LoadAnnotations``.

    The checks of :class:`LoadCheckedAnnotations` (ids inside the classes
    or ``ignore_index``, the image's size) as a step of their own, so that
    eval pipelines keep the stock loader names that mmseg's inference API
    looks for: ``inference_model`` removes the step named
    ``LoadAnnotations`` and ``MMSegInferencer`` replaces the one named
    ``LoadImageFromFile``. Without a ``gt_seg_map`` (those APIs, or a split
    without masks) the results pass unchanged.

    Required Keys:

    - gt_seg_map (optional)
    - seg_map_path (optional, for the message)
    - ori_shape (optional)

    Args:
        num_classes (int, optional): Classes including the background.
            Defaults to None (the data info's ``seg_num_classes``).
        ignore_index (int, optional): The ignored id. Defaults to None (the
            data info's ``seg_ignore_index``, else 255).
    """

    def __init__(self,
                 num_classes: Optional[int] = None,
                 ignore_index: Optional[int] = None) -> None:
        self.num_classes = num_classes
        self.ignore_index = ignore_index

    def transform(self, results: dict) -> dict:
        """Check ``gt_seg_map`` if present.

        Args:
            results (dict): Pipeline results.

        Returns:
            dict: ``results``, unchanged.
        """
        if 'gt_seg_map' in results:
            check_seg_map(results, self.num_classes, self.ignore_index)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num_classes={self.num_classes}, '
                f'ignore_index={self.ignore_index})')
