# Copyright (c) OpenMMLab. All rights reserved.
import random
import warnings
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import mmcv
import numpy as np
import torch
import torch.nn.functional as F
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness
from PIL import Image, ImageEnhance

from mmseg.registry import TRANSFORMS
from mmseg_dupl.utils.homography import (hflip_matrix, scale_matrix,
                                         warp_by_homography)

_BACKENDS = ('pillow', 'cv2')


def _auto_contrast(img: np.ndarray, value: float, backend: str):
    return mmcv.auto_contrast(img)


def _equalize(img: np.ndarray, value: float, backend: str):
    return mmcv.imequalize(img)


def _posterize(img: np.ndarray, value: float, backend: str):
    # the reference: ``ImageOps.posterize(img, max(1, int(v)))``
    return mmcv.posterize(img, max(1, int(value)))


def _color(img: np.ndarray, value: float, backend: str):
    with warnings.catch_warnings():
        # mmcv warns on every pillow call that only ``alpha`` is used
        warnings.simplefilter('ignore', UserWarning)
        return mmcv.adjust_color(img, value, backend=backend)


def _contrast(img: np.ndarray, value: float, backend: str):
    return mmcv.adjust_contrast(img, value, backend=backend)


def _brightness(img: np.ndarray, value: float, backend: str):
    return mmcv.adjust_brightness(img, value, backend=backend)


def _sharpness(img: np.ndarray, value: float, backend: str):
    if backend == 'cv2':
        return mmcv.adjust_sharpness(img, value)
    # mmcv has no pillow path here: its cv2 filter reflects at the border,
    # whereas PIL's SMOOTH filter leaves the one-pixel border untouched
    pil = Image.fromarray(np.ascontiguousarray(img[..., ::-1]))
    pil = ImageEnhance.Sharpness(pil).enhance(value)
    return np.ascontiguousarray(np.asarray(pil)[..., ::-1])


#: name -> (function, min value, max value, whether the value is used);
#: ranges are the reference's ``utils/randomaug.py`` ones (algorithm.md §6)
STRONG_OPS: Dict[str, Tuple[Callable, float, float, bool]] = {
    'AutoContrast': (_auto_contrast, 0., 1., False),
    'Equalize': (_equalize, 0., 1., False),
    'Posterize': (_posterize, 0., 6., True),
    'Color': (_color, 0.1, 1.9, True),
    'Contrast': (_contrast, 0.1, 1.9, True),
    'Brightness': (_brightness, 0.1, 1.9, True),
    'Sharpness': (_sharpness, 0.1, 1.9, True),
}


def rescale_bilinear(img: np.ndarray, scale: float) -> np.ndarray:
    """Half-pixel bilinear rescale of a uint8 image, as ``F.interpolate``.

    Equals the reference's ``F.interpolate(x, scale_factor=scale,
    mode='bilinear', align_corners=False)`` (no antialiasing; output size
    ``floor(scale * size)``; sampling ``(i + 0.5) / scale - 0.5``) up to
    the final round-to-nearest to uint8. The reference interpolates the
    normalised float tensor, so this differs from it by at most 0.5 grey
    levels per pixel before normalisation.

    Args:
        img (np.ndarray): ``(h, w, C)`` uint8 image.
        scale (float): Rescale factor.

    Returns:
        np.ndarray: ``(floor(scale*h), floor(scale*w), C)`` uint8 image.
    """
    x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)
    x = F.interpolate(x[None].float(), scale_factor=scale, mode='bilinear',
                      align_corners=False)[0]
    x = x.round().clamp_(0, 255).to(torch.uint8)
    return np.ascontiguousarray(x.permute(1, 2, 0).numpy())


@TRANSFORMS.register_module()
class StrongAug(BaseTransform):
    """DuPL's strong view: RandAugment(n, m) + flip + rescale (algorithm.md
    §6).

    What it is for: the strong branch of DuPL's ``MultiBranch`` pipeline,
    whose predictions the consistency loss compares with the weak view's
    pseudo labels mapped through the recorded ``homography_matrix``. It is
    an ordinary mmseg transform, so it also works as a photometric +
    geometric augmentation in any (e.g. fully supervised) pipeline; then
    choose the geometry (see "Defaults" below).

    Defaults (DuPL's settings): 5 ops at magnitude 10, an unconditional
    horizontal flip (``flip_prob=1.0``) and a x0.75 downscale
    (``scale=0.75``). So a 64x64 crop leaves as a flipped 48x48 sample: fine
    for DuPL, whose consistency loss warps back through the matrix, but in a
    supervised pipeline the sample shrinks and every image is mirrored. For
    that use, set ``flip_prob=0.5`` (random flip) and ``scale=None`` (no
    rescale), or put ``StrongAug`` before ``RandomCrop``; see
    ``configs/examples/deeplabv3plus_r50-d8_strongaug_ade20k-512x512.py``.

    On the weak view's uint8 pixels (algorithm.md §15.4):

    1. ``num_ops`` photometric ops drawn **with replacement**
       (``random.choices``) from ``ops``, each with value
       ``magnitude / 30 * (max - min) + min``: Posterize keeps 2 bits and
       the enhance ops use factor 0.7 at ``magnitude=10``;
    2. a horizontal flip with probability ``flip_prob`` (1.0 = the
       reference's unconditional flip);
    3. a ``scale`` rescale (bilinear, half-pixel, see
       :func:`rescale_bilinear`), which the reference does inside the model.

    Labels follow the geometry: ``gt_seg_map`` and every other key listed
    in ``seg_fields`` (mmseg's ``LoadAnnotations`` convention) are warped
    by the same flip and rescale, with nearest-neighbour sampling and
    ``seg_pad_val`` (ignore) for pixels without a source. They keep the
    image's new ``(h, w)``; photometric ops never touch them.

    The geometry is recorded as ``homography_matrix`` (float32 3x3, continuous
    pixel-edge coordinates), composed as ``H = H_op @ H_prev`` from the
    incoming ``homography_matrix`` (identity if absent). Put first in the
    strong branch of ``MultiBranch``, where nothing has moved the pixels
    since the split, ``H`` maps **weak-view to strong-view** coordinates;
    any transform after it that moves pixels must record into ``H`` too.

    ``backend='pillow'`` (default) follows the reference's PIL numerics:
    AutoContrast, Equalize and Posterize use mmcv's ops, which equal PIL's
    ImageOps; Color, Contrast and Brightness use mmcv's pillow backend
    (PIL's ImageEnhance); Sharpness uses PIL's ImageEnhance directly.
    ``backend='cv2'`` uses mmcv's cv2 ops throughout: Color, Contrast and
    Brightness then differ from PIL by rounding (at most 1 grey level on the
    test images) and Sharpness differs on the one-pixel image border.
    Two differences from the reference remain: the reference augments its
    truncated denormalisation of the normalised tensor (some pixels 1 grey
    level low, algorithm.md §1.2), and it rescales in float rather than uint8.

    Randomness: Python ``random`` only (op choice; flip only when
    ``0 < flip_prob < 1``), in ``@cache_randomness`` methods.

    Required Keys:

    - img (BGR uint8)

    Modified Keys:

    - img
    - img_shape
    - gt_seg_map and the other ``seg_fields`` (optional; warped once by the
      op matrix with nearest neighbour and ``seg_pad_val`` outside, via
      :func:`warp_by_homography`)

    Added Keys:

    - homography_matrix (np.float32 (3, 3))
    - strong_aug_ops (list of ``(name, value)``; ``value`` is None for
      AutoContrast, Equalize and HorizontalFlip)

    Args:
        num_ops (int): Number of photometric ops. Defaults to 5.
        magnitude (float): RandAugment magnitude on a 0..30 scale.
            Defaults to 10.
        ops (Sequence[str]): Op names, keys of :data:`STRONG_OPS`, in the
            reference's list order (it matters for ``random.choices``).
            Defaults to all seven.
        flip_prob (float): Horizontal flip probability. Defaults to 1.0
            (DuPL: always flip); 0.5 for a random flip.
        scale (float, optional): Rescale factor; None or 1.0 disables.
            Defaults to 0.75 (DuPL's strong view is 3/4 the size).
        backend (str): ``'pillow'`` or ``'cv2'``. Defaults to ``'pillow'``.
        seg_pad_val (int): Label for pixels of ``gt_seg_map`` with no
            source. Defaults to 255.
    """

    def __init__(self,
                 num_ops: int = 5,
                 magnitude: float = 10,
                 ops: Sequence[str] = tuple(STRONG_OPS),
                 flip_prob: float = 1.0,
                 scale: Optional[float] = 0.75,
                 backend: str = 'pillow',
                 seg_pad_val: int = 255) -> None:
        unknown = [op for op in ops if op not in STRONG_OPS]
        assert not unknown and len(ops) > 0, (
            f'StrongAug: unknown ops {unknown}; choose from '
            f'{list(STRONG_OPS)}')
        assert num_ops >= 0, f'StrongAug: num_ops must be >= 0, got {num_ops}'
        assert 0 <= magnitude <= 30, (
            f'StrongAug: magnitude must be in [0, 30], got {magnitude}')
        assert 0 <= flip_prob <= 1, (
            f'StrongAug: flip_prob must be in [0, 1], got {flip_prob}')
        assert scale is None or scale > 0, (
            f'StrongAug: scale must be positive, got {scale}')
        assert backend in _BACKENDS, (
            f'StrongAug: backend must be one of {_BACKENDS}, got {backend!r}')
        self.num_ops = num_ops
        self.magnitude = magnitude
        self.ops = tuple(ops)
        self.flip_prob = flip_prob
        self.scale = scale
        self.backend = backend
        self.seg_pad_val = seg_pad_val

    def op_value(self, name: str) -> float:
        """The reference's ``(m / 30) * (max - min) + min`` for op ``name``."""
        _, low, high, _ = STRONG_OPS[name]
        return (float(self.magnitude) / 30) * float(high - low) + low

    @cache_randomness
    def _random_ops(self) -> List[str]:
        """Draw ``num_ops`` op names with replacement (``random.choices``)."""
        return random.choices(self.ops, k=self.num_ops)

    @cache_randomness
    def _random_flip(self) -> bool:
        """Flip decision; no RNG draw when the probability is 0 or 1."""
        if self.flip_prob in (0, 1):
            return bool(self.flip_prob)
        return random.random() < self.flip_prob

    def _photometric(self, img: np.ndarray) -> Tuple[np.ndarray, list]:
        records = []
        for name in self._random_ops():
            fn, _, _, uses_value = STRONG_OPS[name]
            value = self.op_value(name)
            img = fn(img, value, self.backend)
            if name == 'Posterize':
                value = max(1, int(value))
            records.append((name, value if uses_value else None))
        return img, records

    def _geometric(self, results: dict) -> Tuple[np.ndarray, list]:
        """Flip and rescale img (and gt_seg_map); return the op matrix."""
        h, w = results['img'].shape[:2]
        H = np.eye(3)
        records = []
        if self._random_flip():
            H = hflip_matrix(w) @ H
            results['img'] = np.ascontiguousarray(results['img'][:, ::-1])
            records.append(('HorizontalFlip', None))
        if self.scale is not None and self.scale != 1:
            H = scale_matrix(self.scale) @ H
            results['img'] = rescale_bilinear(results['img'], self.scale)
            records.append(('Rescale', self.scale))
        out_hw = results['img'].shape[:2]
        for key in self._seg_keys(results):
            results[key] = self._warp_seg(results[key], H, out_hw)
        return H, records

    @staticmethod
    def _seg_keys(results: dict) -> List[str]:
        """``gt_seg_map`` and the ``seg_fields`` present in ``results``."""
        keys = ['gt_seg_map'] + list(results.get('seg_fields', []))
        return [k for k in dict.fromkeys(keys) if k in results]

    def _warp_seg(self, seg: np.ndarray, H: np.ndarray,
                  out_hw: Tuple[int, int]) -> np.ndarray:
        # one nearest-neighbour warp by the recorded matrix, so the labels
        # are exactly warp_by_homography(weak labels, H) (a flip alone is
        # an exact flip; rescale ties are broken by grid_sample's rounding)
        out = warp_by_homography(
            torch.from_numpy(np.ascontiguousarray(seg))[None],
            H,
            out_hw,
            mode='nearest',
            padding='fill',
            fill=self.seg_pad_val)
        return out[0].numpy()

    def transform(self, results: dict) -> dict:
        """Build the strong view and record its geometry.

        Args:
            results (dict): Result dict with a BGR uint8 ``img`` (h, w, 3).

        Returns:
            dict: The result dict, ``img`` now the strong view.
        """
        img = results['img']
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(
                'StrongAug: expects a BGR uint8 (h, w, 3) image, got '
                f'{img.dtype} {img.shape} for '
                f'{results.get("img_path", "<no img_path>")}')
        results['img'], records = self._photometric(img)
        H_op, geo_records = self._geometric(results)
        H_prev = results.get('homography_matrix', np.eye(3))
        H = H_op @ np.asarray(H_prev, dtype=np.float64)
        results['homography_matrix'] = H.astype(np.float32)
        results['img_shape'] = results['img'].shape[:2]
        results['strong_aug_ops'] = records + geo_records
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num_ops={self.num_ops}, '
                f'magnitude={self.magnitude}, ops={self.ops}, '
                f'flip_prob={self.flip_prob}, scale={self.scale}, '
                f'backend={self.backend})')
