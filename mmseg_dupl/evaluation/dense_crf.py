# Copyright (c) OpenMMLab. All rights reserved.
"""DenseCRF post-processing of segmentation logits (algorithm.md §10.2)."""
from typing import Union

import numpy as np
from torch import Tensor

_INSTALL_HINT = ('DenseCRF needs pydensecrf: `pip install pydensecrf2` '
                 '(imports as `pydensecrf`; the original PyPI `pydensecrf` '
                 'wheel does not build on recent Python/numpy).')


def _import_pydensecrf():
    """Import pydensecrf lazily: it is only needed when CRF is asked for."""
    try:
        import pydensecrf.densecrf as dcrf
        from pydensecrf.utils import unary_from_softmax
    except ImportError as err:
        raise ImportError(_INSTALL_HINT) from err
    return dcrf, unary_from_softmax


def softmax_np(logits: np.ndarray) -> np.ndarray:
    """Numerically stable softmax over axis 0.

    Args:
        logits (np.ndarray): ``(K, H, W)`` scores.

    Returns:
        np.ndarray: ``(K, H, W)`` float32 probabilities.
    """
    logits = logits.astype(np.float32, copy=False)
    shifted = np.exp(logits - logits.max(axis=0, keepdims=True))
    return shifted / shifted.sum(axis=0, keepdims=True)


def _check_inputs(image: np.ndarray, logits: np.ndarray) -> None:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError('dense_crf: image must be an (H, W, 3) uint8 RGB '
                         f'array, got shape {image.shape} dtype {image.dtype}')
    if logits.ndim != 3:
        raise ValueError('dense_crf: logits must be (K, H, W), got shape '
                         f'{logits.shape}')
    if logits.shape[1:] != image.shape[:2]:
        raise ValueError(f'dense_crf: logits size {logits.shape[1:]} differs '
                         f'from the image size {image.shape[:2]}; resize the '
                         'logits to the image first')


def dense_crf(image_rgb_uint8: np.ndarray,
              logits: Union[Tensor, np.ndarray],
              n_iter: int = 10,
              gauss_sxy: float = 1,
              gauss_compat: float = 1,
              bi_sxy: float = 121,
              bi_srgb: float = 5,
              bi_compat: float = 4) -> np.ndarray:
    """Refine segmentation logits with a fully connected CRF.

    The official evaluation's ``DenseCRF`` (algorithm.md §10.2): unary
    ``-log softmax(logits)`` (probabilities clipped at 1e-5 by pydensecrf's
    ``unary_from_softmax``), a Gaussian kernel (``sxy=1, compat=1``) and a
    bilateral kernel (``sxy=121, srgb=5, compat=4``) on the uint8 RGB image,
    10 mean-field iterations, then the argmax of the marginals.

    Args:
        image_rgb_uint8 (np.ndarray): ``(H, W, 3)`` RGB uint8 image.
        logits (Tensor | np.ndarray): ``(K, H, W)`` raw scores at image
            size (not probabilities).
        n_iter (int): Mean-field iterations. Defaults to 10.
        gauss_sxy (float): Gaussian kernel spatial std. Defaults to 1.
        gauss_compat (float): Gaussian kernel weight. Defaults to 1.
        bi_sxy (float): Bilateral kernel spatial std. Defaults to 121.
        bi_srgb (float): Bilateral kernel colour std. Defaults to 5.
        bi_compat (float): Bilateral kernel weight. Defaults to 4.

    Returns:
        np.ndarray: ``(H, W)`` int64 labels in ``[0, K)``.
    """
    if isinstance(logits, Tensor):
        logits = logits.detach().float().cpu().numpy()
    logits = np.asarray(logits)
    image = np.asarray(image_rgb_uint8)
    _check_inputs(image, logits)
    dcrf, unary_from_softmax = _import_pydensecrf()
    num_classes, height, width = logits.shape
    unary = np.ascontiguousarray(unary_from_softmax(softmax_np(logits)))
    crf = dcrf.DenseCRF2D(width, height, num_classes)
    crf.setUnaryEnergy(unary)
    crf.addPairwiseGaussian(sxy=gauss_sxy, compat=gauss_compat)
    crf.addPairwiseBilateral(
        sxy=bi_sxy,
        srgb=bi_srgb,
        rgbim=np.ascontiguousarray(image),
        compat=bi_compat)
    marginals = np.array(crf.inference(n_iter)).reshape(
        num_classes, height, width)
    return marginals.argmax(axis=0).astype(np.int64)
