# Copyright (c) OpenMMLab. All rights reserved.
"""Segmentation pseudo labels from CAMs and PAR (algorithm.md §1.2, §4.3)."""
from typing import Callable, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from ..cam.cam_labels import box_mask
from .par import par_refine
from ..utils.precision import fp32_island

#: ImageNet statistics on the 0-255 scale (RGB), as in the configs.
IMAGENET_MEAN_255 = (123.675, 116.28, 103.53)
IMAGENET_STD_255 = (58.395, 57.12, 57.375)


def denormalize_truncated(inputs: Tensor,
                          mean: Sequence[float] = IMAGENET_MEAN_255,
                          std: Sequence[float] = IMAGENET_STD_255) -> Tensor:
    """Undo the normalisation the official way (``denormalize_img2``).

    ``uint8(x * std255 + mean255) / 255``: the float -> uint8 cast
    truncates, so a few pixels come out 1/255 low. Values are clamped to
    [0, 255] before the cast (no change for in-range values; the official
    cast of out-of-range values is undefined).

    Args:
        inputs (Tensor): Normalised RGB images, shape (B, 3, H, W).
        mean (Sequence[float]): Per-channel mean, 0-255 scale.
        std (Sequence[float]): Per-channel std, 0-255 scale.

    Returns:
        Tensor: float32 images in [0, 1], shape (B, 3, H, W).
    """
    if inputs.dim() != 4 or inputs.shape[1] != 3:
        raise ValueError('pseudo_label: inputs must be (B, 3, H, W), got '
                         f'{tuple(inputs.shape)}')
    mean, std = [float(m) for m in mean], [float(s) for s in std]
    if len(mean) != 3 or len(std) != 3:
        raise ValueError('pseudo_label: mean and std need 3 values')
    # Channel by channel with Python scalars, as the official code.
    channels = [inputs[:, c] * std[c] + mean[c] for c in range(3)]
    pixels = torch.stack(channels, dim=1).clamp(0, 255).to(torch.uint8)
    return pixels / 255.0


def _key_scores(thr: Union[float, Tensor], cams: Tensor,
                keys: Tensor) -> Tensor:
    """The official ``cat[bkg, cams]`` score maps, only at each image's
    keys: a constant background channel (``thr``, per image if (B,)) and
    the CAMs of the key classes.

    Args:
        thr (float | Tensor): Background score, a float or (B,).
        cams (Tensor): CAMs, shape (B, C, H, W).
        keys (Tensor): From ``present_keys``, (B, K'); ``keys[:, 0]`` is
            the background (0).

    Returns:
        Tensor: Scores, shape (B, K', H, W).
    """
    b, _, h, w = cams.shape
    bkg = cams.new_ones(b, 1, h, w)
    if isinstance(thr, Tensor) and thr.dim() > 0:
        if thr.shape != (b, ):
            raise ValueError('refine_cams_with_dynamic_thres: a tensor '
                             f'image_thresholds must be (B,) = ({b},), got '
                             f'{tuple(thr.shape)}')
        bkg = bkg * thr.to(cams).view(b, 1, 1, 1)
    else:
        bkg = bkg * float(thr)
    index = (keys[:, 1:] - 1)[:, :, None, None].expand(-1, -1, h, w)
    return torch.cat([bkg, cams.gather(1, index)], dim=1)


def present_keys(cls_labels: Tensor) -> Tuple[Tensor, Tensor]:
    """Channel keys ``[0] + (present classes + 1)`` per image, padded.

    Args:
        cls_labels (Tensor): Multi-hot labels, shape (B, C).

    Returns:
        tuple[Tensor]: ``keys`` (B, K') long, ascending, padded with the
        absent channels after the present ones, and ``key_valid`` (B, K')
        bool; K' = 1 + the most classes present in one image.
    """
    background = cls_labels.new_ones(cls_labels.shape[0], 1, dtype=torch.bool)
    present = torch.cat([background, cls_labels != 0], dim=1)
    # A stable sort puts the present channels first, in ascending order.
    order = (~present).long().argsort(dim=1, stable=True)
    num_keys = int(present.sum(dim=1).max())
    keys = order[:, :num_keys]
    return keys, present.gather(1, keys)


def _key_probs(scores: Tensor, key_valid: Tensor) -> Tensor:
    """Softmax over each image's key channels (padding channels get 0).

    Args:
        scores (Tensor): Key scores from ``_key_scores``, (B, K', h, w).
        key_valid (Tensor): From ``present_keys``, (B, K').

    Returns:
        Tensor: Probabilities over the keys, shape (B, K', h, w).
    """
    valid = key_valid[:, :, None, None]
    return scores.masked_fill(~valid, float('-inf')).softmax(dim=1)


def _first_argmax(x: Tensor) -> Tensor:
    """``x.argmax(dim=1)`` (the first maximum) for a few channels, by
    comparing channel after channel: the same indices for finite or -inf
    values, 10-20x faster on the CPU than an argmax over the strided
    channel dim.

    Args:
        x (Tensor): Scores, shape (B, K, H, W), no NaN.

    Returns:
        Tensor: Long indices, shape (B, H, W).
    """
    best = x[:, 0]
    index = torch.zeros_like(best, dtype=torch.long)
    for k in range(1, x.shape[1]):
        better = x[:, k] > best
        index.masked_fill_(better, k)
        best = torch.where(better, x[:, k], best)
    return index


def _keys_argmax(refined: Tensor, keys: Tensor, key_valid: Tensor,
                 out_hw: Tuple[int, int]) -> Tensor:
    """Upsample refined maps, argmax over the valid keys, map to labels.

    Args:
        refined (Tensor): PAR output over the keys, (B, K', h, w).
        keys (Tensor): From ``present_keys``, (B, K').
        key_valid (Tensor): From ``present_keys``, (B, K').
        out_hw (tuple[int, int]): Output size (H, W).

    Returns:
        Tensor: Labels in ``{0} U {present + 1}``, long, (B, H, W).
    """
    refined = F.interpolate(
        refined, size=out_hw, mode='bilinear', align_corners=False)
    refined = refined.masked_fill(~key_valid[:, :, None, None], float('-inf'))
    index = _first_argmax(refined).flatten(1)
    return keys.gather(1, index).view(-1, *out_hw)


@fp32_island
def refine_cams_with_dynamic_thres(image: Tensor,
                                   cams: Tensor,
                                   cls_labels: Tensor,
                                   image_thresholds: Union[float, Tensor],
                                   low_threshold: float = 0.25,
                                   img_box: Optional[Tensor] = None,
                                   down_scale: int = 2,
                                   ignore_index: int = 255,
                                   par: Optional[Callable] = None) -> Tensor:
    """CAM + PAR segmentation pseudo labels (algorithm.md §4.3).

    .. code:: text

        G_h = resize(cat[tau_h, cams]); G_l = resize(cat[tau_l, cams])
        per image and G: softmax over keys [0] + (present + 1) -> PAR on
        the /down_scale image -> upsample -> argmax -> map through keys
        Y = L_h; Y[L_h == 0] = ignore; Y[L_h + L_l == 0] = 0
        outside img_box: ignore

    All images and both thresholds go through PAR in one call: each image
    keeps only its key channels, padded to the batch's largest key count
    with inert zero channels, which gives the official per-image result.
    A scalar ``image_thresholds`` is the official ``refine_cams_with_bkg_v2``
    (COCO); a (B,) one is ``refine_cams_with_dynamic_thres``.

    Args:
        image (Tensor): Denormalised images in [0, 1], (B, 3, H, W).
        cams (Tensor): CAMs in [0, 1] at the image size, (B, C, H, W).
        cls_labels (Tensor): Multi-hot image labels, shape (B, C).
        image_thresholds (float | Tensor): tau_i, per image (B,), or one
            float tau_h for every image.
        low_threshold (float): tau_l. Defaults to 0.25.
        img_box (Tensor, optional): ``[r0, r1, c0, c1]`` valid rows/cols in
            image pixels, (B, 4). Defaults to None (all valid).
        down_scale (int): PAR runs at (H // s, W // s). Defaults to 2.
        ignore_index (int): Ignore value. Defaults to 255.
        par (Callable, optional): ``par(image, probs) -> refined`` with
            image (B, 3, h, w) and probs (B, K, h, w); it must treat the
            channels independently, as PAR does. Defaults to ``par_refine``.

    Returns:
        Tensor: Pseudo labels, long, shape (B, H, W).
    """
    if image.dim() != 4 or cams.dim() != 4 or \
            image.shape[-2:] != cams.shape[-2:] or \
            image.shape[0] != cams.shape[0]:
        raise ValueError('pseudo_label: image (B, 3, H, W) and cams '
                         '(B, C, H, W) must share B, H, W, got '
                         f'{tuple(image.shape)} and {tuple(cams.shape)}')
    if cls_labels.shape != cams.shape[:2]:
        raise ValueError('pseudo_label: cls_labels must be (B, C) = '
                         f'{tuple(cams.shape[:2])}, got '
                         f'{tuple(cls_labels.shape)}')
    par = par_refine if par is None else par
    h, w = image.shape[-2:]
    small = (h // down_scale, w // down_scale)
    image_small = F.interpolate(
        image, size=small, mode='bilinear', align_corners=False)
    keys, key_valid = present_keys(cls_labels)
    # Resizing works per channel: only the key channels are resized (the
    # official code resizes all 1 + C; the same numbers to float rounding).
    probs = [
        _key_probs(
            F.interpolate(
                _key_scores(thr, cams, keys),
                size=small,
                mode='bilinear',
                align_corners=False), key_valid)
        for thr in (image_thresholds, low_threshold)
    ]
    # PAR is linear per channel with an image-only affinity: refining both
    # thresholds' maps in one call equals two calls, at half the cost.
    refined = par(image_small, torch.cat(probs, dim=1))
    num_keys = keys.shape[1]
    label_h, label_l = [
        _keys_argmax(r, keys, key_valid, (h, w))
        for r in refined.split(num_keys, dim=1)
    ]
    label = label_h.masked_fill(label_h == 0, ignore_index)
    label = label.masked_fill((label_h == 0) & (label_l == 0), 0)
    if img_box is not None:
        inside = box_mask(img_box, h, w).to(label.device)
        label = label.masked_fill(~inside, ignore_index)
    return label
