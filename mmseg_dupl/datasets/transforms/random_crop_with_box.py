# Copyright (c) OpenMMLab. All rights reserved.
import random
from typing import Sequence, Tuple, Union

import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness

from mmseg.registry import TRANSFORMS


def valid_box(img_hw: Tuple[int, int], paste: Tuple[int, int],
              origin: Tuple[int, int], crop_hw: Tuple[int, int]) -> np.ndarray:
    """Rows/columns of the real image inside the crop (algorithm.md §1.1 step
    4).

    Args:
        img_hw (tuple[int, int]): Image size ``(h, w)`` before padding.
        paste (tuple[int, int]): Paste offset ``(H_pad, W_pad)`` of the
            image on the canvas.
        origin (tuple[int, int]): Crop origin ``(y0, x0)`` on the canvas.
        crop_hw (tuple[int, int]): Crop size.

    Returns:
        np.ndarray: int64 ``(4,)`` ``[r0, r1, c0, c1]``: valid rows
        ``[r0, r1)`` and columns ``[c0, c1)`` of the crop.
    """
    (h, w), (h_pad, w_pad), (y0, x0) = img_hw, paste, origin
    return np.array([
        max(h_pad - y0, 0),
        min(crop_hw[0], h + h_pad - y0),
        max(w_pad - x0, 0),
        min(crop_hw[1], w + w_pad - x0)
    ], dtype=np.int64)


@TRANSFORMS.register_module()
class RandomCropWithValidBox(BaseTransform):
    """Pad-then-crop with black padding, recording the valid image box.

    algorithm.md §1.1 step 4 (ToCo's / DuPL's ``random_crop``): the image (h,
    w) is
    pasted on a canvas ``max(ch, h) x max(cw, w)`` filled with ``pad_val`` at
    offset ``(np.random.randint(Hc - h + 1), np.random.randint(Wc - w + 1))``,
    then a crop ``(ch, cw)`` is taken at ``(random.randrange(Hc - ch + 1),
    random.randrange(Wc - cw + 1))``. The draws use the reference's RNGs
    (numpy for the paste offset, Python ``random`` for the origin) in its
    order. An image smaller than the crop is thus padded, not upscaled; the
    padding takes part in the later colour jitter like the reference's.

    Required Keys:

    - img

    Modified Keys:

    - img
    - img_shape
    - gt_seg_map (optional, padded with ``seg_pad_val``; never present in
      WSSS training, kept consistent for debugging and visualisation)

    Added Keys:

    - img_box (np.int64 (4,) ``[r0, r1, c0, c1]``)

    Args:
        crop_size (int | tuple[int, int]): Crop ``(h, w)``. Defaults to 448.
        pad_val (int | Sequence[int]): Canvas value, per channel if a
            sequence (BGR order). Defaults to 0 (black, as the reference).
        seg_pad_val (int): Canvas value of ``gt_seg_map``. Defaults to 255.
    """

    def __init__(self,
                 crop_size: Union[int, Tuple[int, int]] = 448,
                 pad_val: Union[int, Sequence[int]] = 0,
                 seg_pad_val: int = 255) -> None:
        if isinstance(crop_size, int):
            crop_size = (crop_size, crop_size)
        assert len(crop_size) == 2 and min(crop_size) > 0, (
            f'RandomCropWithValidBox: crop_size must be a positive int or '
            f'(h, w), got {crop_size}')
        self.crop_size = tuple(int(c) for c in crop_size)
        self.pad_val = pad_val
        self.seg_pad_val = seg_pad_val

    @cache_randomness
    def _random_layout(
            self, img_hw: Tuple[int, int],
            canvas_hw: Tuple[int, int]) -> Tuple[Tuple[int, int], ...]:
        """Draw the paste offset and crop origin in the reference order."""
        (h, w), (hc, wc) = img_hw, canvas_hw
        h_pad = int(np.random.randint(hc - h + 1))
        w_pad = int(np.random.randint(wc - w + 1))
        y0 = random.randrange(0, hc - self.crop_size[0] + 1, 1)
        x0 = random.randrange(0, wc - self.crop_size[1] + 1, 1)
        return (h_pad, w_pad), (y0, x0)

    def _pad_and_crop(self, arr: np.ndarray, fill, paste: Tuple[int, int],
                      origin: Tuple[int, int],
                      canvas_hw: Tuple[int, int]) -> np.ndarray:
        """Paste ``arr`` on a ``fill`` canvas and cut the crop."""
        h, w = arr.shape[:2]
        canvas = np.empty(canvas_hw + arr.shape[2:], dtype=arr.dtype)
        canvas[...] = fill
        canvas[paste[0]:paste[0] + h, paste[1]:paste[1] + w] = arr
        (y0, x0), (ch, cw) = origin, self.crop_size
        return np.ascontiguousarray(canvas[y0:y0 + ch, x0:x0 + cw])

    def transform(self, results: dict) -> dict:
        """Crop ``img`` to ``crop_size`` and record ``img_box``.

        Args:
            results (dict): Result dict with ``img`` (h, w, C).

        Returns:
            dict: The result dict, ``img`` now ``crop_size + (C,)``.
        """
        img = results['img']
        h, w = img.shape[:2]
        canvas_hw = (max(self.crop_size[0], h), max(self.crop_size[1], w))
        paste, origin = self._random_layout((h, w), canvas_hw)
        results['img'] = self._pad_and_crop(img, self.pad_val, paste, origin,
                                            canvas_hw)
        if 'gt_seg_map' in results:
            results['gt_seg_map'] = self._pad_and_crop(
                results['gt_seg_map'], self.seg_pad_val, paste, origin,
                canvas_hw)
        results['img_shape'] = self.crop_size
        results['img_box'] = valid_box((h, w), paste, origin, self.crop_size)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(crop_size={self.crop_size}, '
                f'pad_val={self.pad_val}, seg_pad_val={self.seg_pad_val})')
