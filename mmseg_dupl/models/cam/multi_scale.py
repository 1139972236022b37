# Copyright (c) OpenMMLab. All rights reserved.
"""Multi-scale CAMs (algorithm.md §3); the CAM -> label rules are in
``cam_labels.py``."""
from typing import Callable, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor
from ..utils.precision import fp32_island

CamFn = Callable[[Tensor], Tuple[Tensor, Tensor]]
SizeType = Union[int, Tuple[int, int]]


def _check_dim(x: Tensor, dim: int, name: str, shape: str) -> None:
    """Raise a clear error when ``x`` is not a ``dim``-D tensor."""
    if not isinstance(x, Tensor) or x.dim() != dim:
        got = tuple(x.shape) if isinstance(x, Tensor) else type(x)
        raise ValueError(f'cam: {name} must be {shape}, got {got}')


@fp32_island
def normalize_cam(cam: Tensor, eps: float = 1e-5) -> Tensor:
    """Min-max normalise every (image, class) map.

    ``(M - min_hw M) / (max_hw(M - min_hw M) + eps)``, as the official
    ``cam + adaptive_max_pool2d(-cam)`` then ``/ (max + 1e-5)``.

    Args:
        cam (Tensor): Maps, shape (B, C, H, W).
        eps (float): Added to the denominator. Defaults to 1e-5.

    Returns:
        Tensor: Normalised maps in [0, 1), shape (B, C, H, W).
    """
    _check_dim(cam, 4, 'cam', '(B, C, H, W)')
    cam = cam - cam.amin(dim=(2, 3), keepdim=True)
    return cam / (cam.amax(dim=(2, 3), keepdim=True) + eps)


def autocast_cam_fn(cam_fn: CamFn, device_type: str,
                    dtype: Optional[str]) -> CamFn:
    """``cam_fn`` run under ``torch.autocast(device_type, dtype)``.

    The optional speed switch ``train_cfg.cam_autocast``: only the CAM
    passes in half precision (their outputs are made fp32 again by the
    merge, which is an fp32 island). Changes the CAMs by half-precision
    rounding (see benchmarks/RESULTS.md for the measured effect).

    Args:
        cam_fn (Callable): ``cam_fn(x) -> (cam, cam_aux)``.
        device_type (str): ``'cuda'`` or ``'cpu'``.
        dtype (str, optional): ``'bfloat16'`` or ``'float16'``; None
            returns ``cam_fn`` unchanged.

    Returns:
        Callable: The wrapped function.
    """
    if dtype is None:
        return cam_fn
    if dtype not in ('bfloat16', 'float16'):
        raise ValueError("cam: cam_autocast must be None, 'bfloat16' or "
                         f"'float16', got {dtype!r}")

    def autocast_fn(x: Tensor) -> Tuple[Tensor, Tensor]:
        with torch.autocast(device_type, dtype=getattr(torch, dtype)):
            return cam_fn(x)

    return autocast_fn


def resize_for_scale(inputs: Tensor, scale: float) -> Tensor:
    """Resize a batch for one CAM scale (scale 1.0 returns ``inputs``).

    Args:
        inputs (Tensor): Images, shape (B, 3, H, W).
        scale (float): Scale factor; the size is ``(int(s*H), int(s*W))``.

    Returns:
        Tensor: Resized images (bilinear, align_corners=False).
    """
    if scale == 1.0:
        return inputs
    h, w = inputs.shape[-2:]
    return F.interpolate(
        inputs,
        size=(int(scale * h), int(scale * w)),
        mode='bilinear',
        align_corners=False)


@fp32_island
def merge_flipped_cam(cam: Tensor, batch_size: int,
                      out_hw: Tuple[int, int]) -> Tensor:
    """Upsample a [x, flip(x)] CAM batch and merge the two halves.

    Args:
        cam (Tensor): Raw CAMs of ``cat[x, flip_w(x)]``, (2B, C, h, w).
        batch_size (int): B.
        out_hw (tuple[int, int]): Output size (H, W).

    Returns:
        Tensor: ``relu(max(A[:B], flip_w(A[B:])))`` at (H, W), (B, C, H, W).
    """
    if cam.dim() != 4 or cam.shape[0] != 2 * batch_size:
        raise ValueError('cam: cam_fn must return (2B, C, h, w) maps for '
                         f'the 2B = {2 * batch_size} flipped inputs, got '
                         f'{tuple(cam.shape)}')
    cam = F.interpolate(cam, size=out_hw, mode='bilinear', align_corners=False)
    return F.relu(torch.max(cam[:batch_size], cam[batch_size:].flip(-1)))


def _class_subset(classes: Optional[Tensor], num_classes: int,
                  batch_size: int) -> Optional[Tensor]:
    """Indices of the classes present in any image, or None for all."""
    if classes is None:
        return None
    if classes.shape != (batch_size, num_classes):
        raise ValueError(f'cam: classes must be (B, C) = ({batch_size}, '
                         f'{num_classes}), got {tuple(classes.shape)}')
    keep = (classes != 0).any(dim=0).nonzero().flatten()
    return None if len(keep) == num_classes else keep


def _scatter_classes(cam: Tensor, keep: Optional[Tensor],
                     num_classes: int) -> Tensor:
    """(B, len(keep), H, W) maps into zero (B, C, H, W) ones."""
    if keep is None:
        return cam
    out = cam.new_zeros(cam.shape[0], num_classes, *cam.shape[2:])
    out[:, keep] = cam
    return out


@torch.inference_mode()
def multi_scale_cam(
    cam_fn: CamFn,
    inputs: Tensor,
    scales: Sequence[float] = (1.0, 0.5, 1.5),
    precomputed: Optional[Tuple[Tensor, Tensor]] = None,
    classes: Optional[Tensor] = None,
) -> Tuple[Tensor, Tensor]:
    """Multi-scale, flip-merged, normalised CAMs (algorithm.md §3).

    For each scale: resize, run ``cam_fn`` on ``cat[x_s, flip_w(x_s)]``,
    upsample to (H, W), take the max of the two halves (un-flipped), ReLU.
    The per-scale maps are summed and normalised per (image, class).

    Note: the official ``multi_scale_cam2`` always evaluates scale 1.0
    first and then the other entries of ``scales``; for the default
    ``(1.0, 0.5, 1.5)`` that is exactly this loop.

    Every step after ``cam_fn`` works on each (image, class) map on its
    own, so ``cam`` and ``cam_aux`` go through it together, and with
    ``classes`` only the classes present in some image of the batch do
    (the others, which every DuPL loss multiplies by its zero image
    label, come out 0): the kept maps equal a run without ``classes`` up
    to float rounding (about 1e-7: the CPU's bilinear kernel vectorises
    differently with the channel count). Runs under
    ``torch.inference_mode``; the outputs are inference tensors (read
    them, do not modify them in place).

    Args:
        cam_fn (Callable): ``cam_fn(x) -> (cam, cam_aux)``, raw maps at
            token resolution (N, C, h', w') for x (N, 3, h, w), no ReLU.
        inputs (Tensor): Normalised images, shape (B, 3, H, W).
        scales (Sequence[float]): Scales. Defaults to (1.0, 0.5, 1.5).
        precomputed (tuple[Tensor, Tensor], optional): Raw ``(cam,
            cam_aux)`` (B, C, h', w') of the un-flipped scale-1.0 inputs,
            e.g. from the training forward's features (identical: CAMs
            are made before the optimizer step). Only ``flip_w(x)`` then
            runs through ``cam_fn`` at scale 1.0. Defaults to None.
        classes (Tensor, optional): Multi-hot image labels (B, C); maps
            of the classes absent from every image are skipped (zeros).
            Defaults to None (all classes).

    Returns:
        tuple[Tensor]: ``cam`` and ``cam_aux``, each (B, C, H, W) in [0, 1).
    """
    _check_dim(inputs, 4, 'inputs', '(B, 3, H, W)')
    if len(scales) == 0 or min(scales) <= 0:
        raise ValueError(f'cam: scales must be positive, got {scales}')
    b, _, h, w = inputs.shape
    merged, keep, num_classes = [], None, None
    for scale in scales:
        x = resize_for_scale(inputs, scale)
        if scale == 1.0 and precomputed is not None:
            flipped = cam_fn(x.flip(-1))
            maps = [torch.cat([p.detach(), f])
                    for p, f in zip(precomputed, flipped)]
        else:
            maps = cam_fn(torch.cat([x, x.flip(-1)], dim=0))
        if num_classes is None:
            num_classes = maps[0].shape[1]
            keep = _class_subset(classes, num_classes, b)
        if keep is not None:
            maps = [m[:, keep] for m in maps]
        # (2B, 2C', h', w'): cam and cam_aux channels side by side
        merged.append(merge_flipped_cam(torch.cat(maps, dim=1), b, (h, w)))
    # Stack-then-sum, the official summation order.
    both = normalize_cam(torch.stack(merged, dim=0).sum(dim=0))
    cam, cam_aux = both.chunk(2, dim=1)
    return (_scatter_classes(cam, keep, num_classes),
            _scatter_classes(cam_aux, keep, num_classes))
