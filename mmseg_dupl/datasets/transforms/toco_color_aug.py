# Copyright (c) OpenMMLab. All rights reserved.
import random
from typing import Optional, Tuple

import numpy as np
import torch
import torchvision.transforms as T
import torchvision.transforms.functional as TF
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness
from PIL import Image, ImageFilter

from mmseg.registry import TRANSFORMS


@TRANSFORMS.register_module()
class ToCoColorAug(BaseTransform):
    """ToCo's ``global_view1`` colour pipeline, applied to the crop.

    algorithm.md §1.1 step 6, on the BGR uint8 crop (padding included, so the
    jitter
    and blur also change the black padding, as in the reference)::

        RandomApply(ColorJitter(**jitter), p=jitter_prob)
        RandomGrayscale(p=gray_prob)
        GaussianBlur(p=blur_prob, radius ~ U(*blur_radius))   # PIL filter

    The image is converted to a PIL RGB image, processed with torchvision's
    PIL functional ops and PIL's ``GaussianBlur``, and converted back to
    BGR. RNGs, in the reference's order: torch (``torch.rand`` for the
    jitter gate, ``ColorJitter.get_params``, ``torch.rand`` for grayscale),
    then Python ``random`` (blur gate ``random.random() <= p``, then
    ``random.uniform`` for the radius). Seeding torch and ``random`` gives
    the same bytes as the torchvision/DINO pipeline. The reference's unused
    "local view" (algorithm.md §1.1 step 5) is not built, so the RNG streams
    are not
    advanced by it.

    Required Keys:

    - img (BGR uint8, 3 channels)

    Modified Keys:

    - img

    Args:
        jitter (dict): ``torchvision.transforms.ColorJitter`` arguments.
            Defaults to ``dict(brightness=0.4, contrast=0.4, saturation=0.2,
            hue=0.1)``.
        jitter_prob (float): Probability of the jitter. Defaults to 0.8.
        gray_prob (float): Probability of grayscale. Defaults to 0.2.
        blur_prob (float): Probability of the blur. Defaults to 1.0.
        blur_radius (tuple[float, float]): Range of the blur radius.
            Defaults to ``(0.1, 2.0)``.
    """

    def __init__(self,
                 jitter: Optional[dict] = None,
                 jitter_prob: float = 0.8,
                 gray_prob: float = 0.2,
                 blur_prob: float = 1.0,
                 blur_radius: Tuple[float, float] = (0.1, 2.0)) -> None:
        if jitter is None:
            jitter = dict(brightness=0.4, contrast=0.4, saturation=0.2,
                          hue=0.1)
        for name, p in (('jitter_prob', jitter_prob),
                        ('gray_prob', gray_prob), ('blur_prob', blur_prob)):
            assert 0 <= p <= 1, f'ToCoColorAug: {name} must be in [0, 1]'
        assert 0 <= blur_radius[0] <= blur_radius[1], (
            f'ToCoColorAug: bad blur_radius {blur_radius}')
        self.jitter = dict(jitter)
        self._color_jitter = T.ColorJitter(**self.jitter)
        self.jitter_prob = jitter_prob
        self.gray_prob = gray_prob
        self.blur_prob = blur_prob
        self.blur_radius = tuple(blur_radius)

    @cache_randomness
    def _random_params(self) -> dict:
        """Draw every random parameter in the reference's order."""
        cj = self._color_jitter
        jitter = None
        # RandomApply: skipped when p < u
        if not self.jitter_prob < torch.rand(1):
            jitter = cj.get_params(cj.brightness, cj.contrast, cj.saturation,
                                   cj.hue)
        gray = bool(torch.rand(1) < self.gray_prob)
        radius = None
        if random.random() <= self.blur_prob:
            radius = random.uniform(*self.blur_radius)
        return dict(jitter=jitter, gray=gray, radius=radius)

    @staticmethod
    def _apply_jitter(img: Image.Image, jitter: tuple) -> Image.Image:
        """Apply ``ColorJitter`` ops in the drawn order (as its forward)."""
        fn_idx, *factors = jitter
        ops = (TF.adjust_brightness, TF.adjust_contrast,
               TF.adjust_saturation, TF.adjust_hue)
        for fn_id in fn_idx:
            if factors[fn_id] is not None:
                img = ops[fn_id](img, factors[fn_id])
        return img

    def transform(self, results: dict) -> dict:
        """Jitter, grayscale and blur ``img``.

        Args:
            results (dict): Result dict with a BGR uint8 ``img`` (h, w, 3).

        Returns:
            dict: The result dict with the augmented ``img``.
        """
        img = results['img']
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(
                'ToCoColorAug: expects a BGR uint8 (h, w, 3) image, got '
                f'{img.dtype} {img.shape} for '
                f'{results.get("img_path", "<no img_path>")}')
        params = self._random_params()
        pil = Image.fromarray(np.ascontiguousarray(img[..., ::-1]))
        if params['jitter'] is not None:
            pil = self._apply_jitter(pil, params['jitter'])
        if params['gray']:
            pil = TF.rgb_to_grayscale(pil, num_output_channels=3)
        if params['radius'] is not None:
            pil = pil.filter(ImageFilter.GaussianBlur(radius=params['radius']))
        results['img'] = np.ascontiguousarray(np.asarray(pil)[..., ::-1])
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(jitter={self.jitter}, '
                f'jitter_prob={self.jitter_prob}, '
                f'gray_prob={self.gray_prob}, blur_prob={self.blur_prob}, '
                f'blur_radius={self.blur_radius})')
