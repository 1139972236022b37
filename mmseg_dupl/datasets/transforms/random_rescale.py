# Copyright (c) OpenMMLab. All rights reserved.
import random
from typing import Tuple

import mmcv
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness

from mmseg.registry import TRANSFORMS

_BACKENDS = ('pillow', 'cv2')


@TRANSFORMS.register_module()
class RandomRescale(BaseTransform):
    """Rescale the image by a ratio drawn relative to its own size.

    algorithm.md §1.1 step 2 (the reference's ``random_scaling``): ``r ~ U(low,
    high)`` with Python's ``random.uniform``, then resize to
    ``(int(r * W0), int(r * H0))``. The default ``backend='pillow'`` resizes
    with PIL like the reference (PIL's bilinear filter widens its support
    when shrinking, i.e. it antialiases); ``backend='cv2'`` uses OpenCV's
    ``INTER_LINEAR``, which does not antialias and rounds differently.

    Required Keys:

    - img

    Modified Keys:

    - img
    - img_shape
    - gt_seg_map (optional, nearest neighbour)

    Added Keys:

    - scale (the new ``(w, h)``)
    - scale_factor (``(w_new / W0, h_new / H0)``)

    Args:
        ratio_range (tuple[float, float]): ``(low, high)`` of the ratio.
            Defaults to ``(0.5, 2.0)``.
        interpolation (str): Image interpolation. Defaults to
            ``'bilinear'``.
        backend (str): ``'pillow'`` (reference numerics) or ``'cv2'``.
            Defaults to ``'pillow'``.
    """

    def __init__(self,
                 ratio_range: Tuple[float, float] = (0.5, 2.0),
                 interpolation: str = 'bilinear',
                 backend: str = 'pillow') -> None:
        low, high = ratio_range
        assert 0 < low <= high, (
            f'RandomRescale: ratio_range must satisfy 0 < low <= high, '
            f'got {ratio_range}')
        assert backend in _BACKENDS, (
            f'RandomRescale: backend must be one of {_BACKENDS}, '
            f'got {backend!r}')
        self.ratio_range = (float(low), float(high))
        self.interpolation = interpolation
        self.backend = backend

    @cache_randomness
    def _random_ratio(self) -> float:
        """Draw the ratio with Python's ``random`` like the reference."""
        return random.uniform(*self.ratio_range)

    def transform(self, results: dict) -> dict:
        """Rescale ``img`` (and ``gt_seg_map`` if present).

        Args:
            results (dict): Result dict with ``img`` (H0, W0, C).

        Returns:
            dict: The result dict, ``img`` now (int(r*H0), int(r*W0), C).
        """
        h0, w0 = results['img'].shape[:2]
        ratio = self._random_ratio()
        new_w, new_h = int(ratio * w0), int(ratio * h0)
        if new_w < 1 or new_h < 1:
            raise ValueError(
                f'RandomRescale: ratio {ratio:.4f} shrinks '
                f'{results.get("img_path", "the image")} ({h0}x{w0}) to '
                'an empty image')
        size = (new_w, new_h)
        results['img'] = mmcv.imresize(
            results['img'], size, interpolation=self.interpolation,
            backend=self.backend)
        if 'gt_seg_map' in results:
            seg = results['gt_seg_map']
            # PIL only takes uint8 arrays; wider label types go to cv2
            backend = self.backend if seg.dtype.name == 'uint8' else 'cv2'
            results['gt_seg_map'] = mmcv.imresize(
                seg, size, interpolation='nearest', backend=backend)
        results['img_shape'] = (new_h, new_w)
        results['scale'] = size
        results['scale_factor'] = (new_w / w0, new_h / h0)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(ratio_range={self.ratio_range}, '
                f'interpolation={self.interpolation}, '
                f'backend={self.backend})')
