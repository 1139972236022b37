# Copyright (c) OpenMMLab. All rights reserved.
from typing import Sequence

import numpy as np

from mmseg.datasets.transforms import PackSegInputs
from mmseg.registry import TRANSFORMS

#: mmseg's ``PackSegInputs`` defaults plus the WSSS keys
WSSS_META_KEYS = ('img_path', 'seg_map_path', 'ori_shape', 'img_shape',
                  'pad_shape', 'scale_factor', 'flip', 'flip_direction',
                  'reduce_zero_label', 'cls_labels', 'img_box',
                  'homography_matrix', 'strong_aug_ops')


@TRANSFORMS.register_module()
class PackWSSSInputs(PackSegInputs):
    """``PackSegInputs`` that keeps the WSSS metainfo and guards the masks.

    Packs like :class:`mmseg.datasets.transforms.PackSegInputs`; the default
    ``meta_keys`` add ``cls_labels`` (float32 (C,) multi-hot),
    ``img_box`` (int64 (4,)), ``homography_matrix`` (float32 (3, 3)) and
    ``strong_aug_ops``. Keys absent from ``results`` are not packed, except
    ``homography_matrix``, which defaults to the identity when
    ``identity_homography=True``: a view whose pipeline recorded no geometry
    (the weak branch) is its own reference frame.

    With ``allow_gt_seg_map=False`` (training configs) a ``gt_seg_map`` in
    ``results`` raises ``ValueError``: weakly supervised training must never
    see pixel labels.

    Args:
        meta_keys (Sequence[str]): Keys packed into the metainfo. Defaults
            to :data:`WSSS_META_KEYS`.
        allow_gt_seg_map (bool): Whether ``gt_seg_map`` may be packed.
            Defaults to True (val/test); set False in training pipelines.
        identity_homography (bool): Pack ``np.eye(3, dtype=np.float32)`` when
            ``homography_matrix`` is a meta key absent from ``results``.
            Defaults to True.
    """

    def __init__(self,
                 meta_keys: Sequence[str] = WSSS_META_KEYS,
                 allow_gt_seg_map: bool = True,
                 identity_homography: bool = True) -> None:
        super().__init__(meta_keys=tuple(meta_keys))
        self.allow_gt_seg_map = allow_gt_seg_map
        self.identity_homography = identity_homography

    def transform(self, results: dict) -> dict:
        """Pack ``img`` and metainfo, refusing masks if so configured.

        Args:
            results (dict): Result dict from the data pipeline.

        Returns:
            dict: ``inputs`` (C, H, W) tensor and ``data_samples``
            (:obj:`SegDataSample`).
        """
        if not self.allow_gt_seg_map and 'gt_seg_map' in results:
            raise ValueError(
                'PackWSSSInputs(allow_gt_seg_map=False): gt_seg_map found in '
                f'the training sample {results.get("img_path", "<unknown>")}'
                '; weakly supervised training must not load pixel labels '
                '(remove LoadAnnotations from the training pipeline)')
        if (self.identity_homography and 'homography_matrix' in self.meta_keys
                and 'homography_matrix' not in results):
            results['homography_matrix'] = np.eye(3, dtype=np.float32)
        return super().transform(results)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(meta_keys={self.meta_keys}, '
                f'allow_gt_seg_map={self.allow_gt_seg_map}, '
                f'identity_homography={self.identity_homography})')
