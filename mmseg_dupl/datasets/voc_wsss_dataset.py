# Copyright (c) OpenMMLab. All rights reserved.
"""Pascal VOC for weakly supervised segmentation (image-level labels)."""
import logging
import os.path as osp
from typing import Dict, List, Optional, Sequence

import mmengine.fileio as fileio
import numpy as np
from mmengine.logging import print_log
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

from .cls_labels import cls_labels_from_mask_files, load_cls_labels
from .split_file import (describe_duplicates, duplicated_entries,
                         read_split_lines)
from mmseg_dupl.visualization.palette import voc_colormap

_MAX_LISTED = 10  # how many offending names an error message lists


def _listing(items: Sequence[str]) -> str:
    """``'a, b, ... (N in total)'`` with at most ``_MAX_LISTED`` items."""
    shown = ', '.join(str(i) for i in items[:_MAX_LISTED])
    more = ', ...' if len(items) > _MAX_LISTED else ''
    return f'{shown}{more} ({len(items)} in total)'


@DATASETS.register_module()
class VOCWSSSDataset(BaseSegDataset):
    """Pascal VOC 2012 (+ SBD ``train_aug``) with image-level labels.

    Every data info carries ``cls_labels``: the float32 multi-hot ``(C,)``
    vector of the foreground classes in the image (C = ``len(classes) - 1``,
    background excluded), which is the only supervision a WSSS model
    trains on. No mask is ever loaded into a data info; ``seg_map_path``
    is kept so that val/test pipelines can ``LoadAnnotations``.

    ``cls_labels`` come from ``cls_label_file`` (the official
    ``cls_labels_onehot.npy``, see :mod:`mmseg_dupl.datasets.cls_labels`)
    when given. Otherwise they are derived from the masks, which are all
    read once when the dataset is built: that takes minutes for the 10,582
    ``train_aug`` images, so write the file once with
    ``tools/make_cls_labels.py`` instead. A split without masks (VOC
    ``test``) needs ``with_seg_map=False``; it then has ``cls_labels`` only
    if ``cls_label_file`` lists its images.

    Layout under ``data_root``::

        JPEGImages/<name>.jpg
        SegmentationClassAug/<name>.png     0 bg, 1..C classes, 255 ignore
        ImageSets/Segmentation/<split>.txt  one name per line, no suffix
        cls_labels_onehot.npy

    Errors are raised at build time, naming the file or key: a missing
    split file, missing images (up to 10 listed), an image absent from the
    label file, a label vector of the wrong length, a mask with a class id
    outside the dataset, and a training image without any foreground class.
    A split file that lists an image more than once is kept but warned
    about, naming the split file and the repeated names.

    The class list of ``metainfo`` (default: the 21 VOC classes) is the id
    space of the masks and of the label vectors on disk; index 0 must be
    the background. Unlike mmseg's ``PascalVOCDataset`` a ``metainfo``
    override does not remap ids to a subset of VOC (``label_map`` is always
    None), so a dataset with its own classes, such as the toy dataset
    (``tools/toy_voc_data.py``), can reuse this class. If
    ``metainfo`` sets classes but no palette, the VOC colour map (extended
    past 21 entries as VOC defines it) colours them.

    Args:
        ann_file (str): Split file, e.g.
            ``'ImageSets/Segmentation/train_aug.txt'`` (relative to
            ``data_root`` or absolute).
        data_root (str, optional): Dataset root. Defaults to None.
        data_prefix (dict, optional): ``img_path`` and ``seg_map_path``
            folders. Defaults to ``dict(img_path='JPEGImages',
            seg_map_path='SegmentationClassAug')``.
        cls_label_file (str, optional): Label file, relative to
            ``data_root`` or absolute. Defaults to None (derive from masks).
        with_seg_map (bool): Whether the split has masks (sets
            ``seg_map_path``). Defaults to True.
        allow_empty_labels (bool): Keep training images
            (``test_mode=False``) whose label vector is all zero. Such an
            image cannot train a WSSS model: it has no class to activate,
            so the CAM-derived losses are undefined for it. Defaults to
            False, which raises and lists them. Evaluation datasets
            (``test_mode=True``) always keep them.
        img_suffix (str): Image suffix. Defaults to '.jpg'.
        seg_map_suffix (str): Mask suffix. Defaults to '.png'.
        **kwargs: Other :class:`mmseg.datasets.BaseSegDataset` arguments
            (``pipeline``, ``test_mode``, ``metainfo``, ``indices``,
            ``ignore_index``, ``backend_args``, ...). ``reduce_zero_label``
            must stay False: id 0 is the background class.
    """
    METAINFO = dict(
        classes=('background', 'aeroplane', 'bicycle', 'bird', 'boat',
                 'bottle', 'bus', 'car', 'cat', 'chair', 'cow', 'diningtable',
                 'dog', 'horse', 'motorbike', 'person', 'pottedplant', 'sheep',
                 'sofa', 'train', 'tvmonitor'),
        palette=[[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0],
                 [0, 0, 128], [128, 0, 128], [0, 128, 128], [128, 128, 128],
                 [64, 0, 0], [192, 0, 0], [64, 128, 0], [192, 128, 0],
                 [64, 0, 128], [192, 0, 128], [64, 128, 128], [192, 128, 128],
                 [0, 64, 0], [128, 64, 0], [0, 192, 0], [128, 192, 0],
                 [0, 64, 128]])
    DEFAULT_DATA_PREFIX = dict(
        img_path='JPEGImages', seg_map_path='SegmentationClassAug')

    def __init__(self,
                 ann_file: str,
                 data_root: Optional[str] = None,
                 data_prefix: Optional[dict] = None,
                 cls_label_file: Optional[str] = None,
                 with_seg_map: bool = True,
                 allow_empty_labels: bool = False,
                 img_suffix: str = '.jpg',
                 seg_map_suffix: str = '.png',
                 **kwargs) -> None:
        if kwargs.get('reduce_zero_label', False):
            raise ValueError(
                f'{type(self).__name__}: reduce_zero_label must be False; '
                'id 0 is the background of the WSSS label space')
        if not ann_file:
            raise ValueError(f'{type(self).__name__}: ann_file (the split '
                             'list) is required')
        if cls_label_file and data_root and not osp.isabs(cls_label_file):
            cls_label_file = osp.join(data_root, cls_label_file)
        self.cls_label_file = cls_label_file
        self.with_seg_map = with_seg_map
        self.allow_empty_labels = allow_empty_labels
        if data_prefix is None:
            data_prefix = dict(self.DEFAULT_DATA_PREFIX)
        super().__init__(
            ann_file=ann_file,
            data_root=data_root,
            data_prefix=data_prefix,
            img_suffix=img_suffix,
            seg_map_suffix=seg_map_suffix,
            **kwargs)

    @classmethod
    def get_label_map(cls,
                      new_classes: Optional[Sequence] = None
                      ) -> Optional[Dict[int, int]]:
        """No remapping: ``metainfo['classes']`` is the on-disk id space.

        Label vectors would have to be remapped together with the masks,
        and a dataset with its own class list must not be forced to be a
        subset of VOC, so this always returns None.
        """
        return None

    def _update_palette(self) -> list:
        """VOC colour map when ``metainfo`` overrides classes only."""
        palette = self._metainfo.get('palette', [])
        classes = self._metainfo.get('classes', [])
        if (len(palette) != len(classes)
                and palette == self.METAINFO.get('palette')):
            return voc_colormap(len(classes)).tolist()
        return super()._update_palette()

    @property
    def num_fg_classes(self) -> int:
        """C, the length of ``cls_labels`` (classes minus background)."""
        return len(self._metainfo['classes']) - 1

    def load_data_list(self) -> List[dict]:
        """Read the split, check the files and attach ``cls_labels``.

        Returns:
            list[dict]: per image ``img_path``, ``seg_map_path`` (only with
            masks), ``cls_labels`` (float32 ``(C,)``), ``label_map``,
            ``reduce_zero_label``, ``seg_fields``, ``sample_idx``, and
            ``seg_num_classes`` / ``seg_ignore_index`` (the valid mask
            ids, checked by ``LoadCheckedAnnotations``).
        """
        names = self._read_split()
        img_dir = self.data_prefix.get('img_path', '')
        seg_dir = self.data_prefix.get('seg_map_path', '')
        self._check_images_exist(names, img_dir)
        labels = self._load_labels(names, seg_dir)
        data_list = []
        for idx, name in enumerate(names):
            info = dict(img_path=osp.join(img_dir, name + self.img_suffix))
            if self.with_seg_map:
                info['seg_map_path'] = osp.join(seg_dir,
                                                name + self.seg_map_suffix)
            if labels is not None:
                info['cls_labels'] = labels[name]
            info.update(
                # for LoadCheckedAnnotations: the valid mask ids
                seg_num_classes=len(self._metainfo['classes']),
                seg_ignore_index=self.ignore_index,
                label_map=self.label_map,
                reduce_zero_label=self.reduce_zero_label,
                seg_fields=[],
                sample_idx=idx)
            data_list.append(info)
        return data_list

    def _read_split(self) -> List[str]:
        """Image names of ``ann_file`` (first token of non-empty lines)."""
        if not osp.isfile(self.ann_file):
            raise FileNotFoundError(
                f'{type(self).__name__}: split file (ann_file) not found: '
                f'{self.ann_file}')
        lines = read_split_lines(self.ann_file)
        if not lines:
            raise ValueError(f'split file {self.ann_file} lists no images')
        duplicates = duplicated_entries(lines)
        if duplicates:
            # kept (a deliberate oversampling is possible), but said: in
            # validation each copy counts again in mIoU
            print_log(
                f'split file {self.ann_file} lists images more than once: '
                f'{describe_duplicates(duplicates)}. Each copy is a sample '
                '(drawn again in training, counted again in mIoU); remove '
                'the repeats unless intended (tools/verify_dataset.py '
                'lists them all).', 'current', logging.WARNING)
        return [name for _, name in lines]

    def _check_images_exist(self, names: List[str], img_dir: str) -> None:
        """Fail at build time, not hours into training, on missing images."""
        if not fileio.exists(img_dir, self.backend_args):
            raise FileNotFoundError(
                f'image folder not found: {img_dir} (data_root='
                f'{self.data_root!r}, data_prefix.img_path)')
        missing = [
            n + self.img_suffix for n in names
            if not self._exists(osp.join(img_dir, n + self.img_suffix))
        ]
        if missing:
            raise FileNotFoundError(
                f'images listed in {self.ann_file} are missing under '
                f'{img_dir}: {_listing(missing)}')

    def _exists(self, path: str) -> bool:
        """``osp.isfile`` for local data (fast for 80k COCO images)."""
        if self.backend_args is None:
            return osp.isfile(path)
        return fileio.exists(path, self.backend_args)

    def _load_labels(self, names: List[str],
                     seg_dir: str) -> Optional[Dict[str, np.ndarray]]:
        """Labels of ``names`` from the label file or the masks."""
        num_classes = self.num_fg_classes
        if self.cls_label_file:
            source = self.cls_label_file
            all_labels = load_cls_labels(source, num_classes)
            absent = [n for n in names if n not in all_labels]
            if absent:
                raise ValueError(
                    f'images of {self.ann_file} are missing from the label '
                    f'file {source}: {_listing(absent)}')
            labels = {n: all_labels[n] for n in names}
        elif self.with_seg_map:
            source = f'the masks in {seg_dir}'
            labels = cls_labels_from_mask_files(names, seg_dir, num_classes,
                                                self.seg_map_suffix,
                                                self.ignore_index)
        elif self.test_mode:
            return None  # e.g. VOC test: no masks, no labels
        else:
            raise ValueError(
                f'{type(self).__name__}: training needs image-level labels; '
                'set cls_label_file, or with_seg_map=True to derive them '
                f'from masks (ann_file={self.ann_file})')
        self._check_not_empty(labels, source)
        return labels

    def _check_not_empty(self, labels: Dict[str, np.ndarray],
                         source: str) -> None:
        """Refuse training images without a foreground class."""
        if self.test_mode or self.allow_empty_labels:
            return
        empty = [n for n, vec in labels.items() if not vec.any()]
        if empty:
            raise ValueError(
                f'training images without any foreground class in {source} '
                f'(split {self.ann_file}): {_listing(empty)}. A WSSS model '
                'cannot learn from them (no class to activate); remove them '
                'from the split or set allow_empty_labels=True')
