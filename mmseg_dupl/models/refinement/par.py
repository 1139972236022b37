# Copyright (c) OpenMMLab. All rights reserved.
"""Pixel-adaptive refinement, PAR (algorithm.md §4.2).

Pure functions plus a parameter-free ``nn.Module`` wrapper registered as
``PAR``. The official module gathers neighbours with a dilated one-hot 3x3
convolution on a replicate-padded input; here the same neighbours are
slices of the padded tensor (exact, and free of the TF32 rounding a cuDNN
convolution may apply).
"""
import math
from typing import List, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import Tensor
from ..utils.precision import fp32_island

#: The 8 neighbour offsets (dy, dx), in the official kernel order.
NEIGHBOR_OFFSETS = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1),
                    (1, 0), (1, 1))


def _check_dilations(dilations: Sequence[int]) -> None:
    """Raise a clear error for an empty or non-positive dilation list."""
    if len(dilations) == 0 or min(dilations) < 1:
        raise ValueError(f'par: dilations must be positive integers, got '
                         f'{dilations}')


def neighbor_windows(dilations: Sequence[int]) -> List[Tuple[int, int]]:
    """Top-left corners of the neighbour windows in a map padded by
    ``max(dilations)``, dilation-major in ``NEIGHBOR_OFFSETS`` order.

    Args:
        dilations (Sequence[int]): Dilations d.

    Returns:
        list[tuple[int, int]]: ``(top, left)`` per neighbour (8 * D).
    """
    _check_dilations(dilations)
    pad = max(dilations)
    return [(pad + dy * d, pad + dx * d) for d in dilations
            for dy, dx in NEIGHBOR_OFFSETS]


def _fill_replicate_border_(padded: Tensor, pad: int) -> Tensor:
    """Fill the ``pad``-wide border of ``padded`` (B, C, H + 2p, W + 2p)
    from its centre in place, as ``F.pad(mode='replicate')`` would (the
    same values: plain copies), without allocating (and about 10x faster
    than the CPU's replicate-pad kernel)."""
    h, w = padded.shape[-2] - 2 * pad, padded.shape[-1] - 2 * pad
    rows = slice(pad, pad + h)
    padded[..., rows, :pad] = padded[..., rows, pad:pad + 1]
    padded[..., rows, pad + w:] = padded[..., rows, pad + w - 1:pad + w]
    padded[..., :pad, :] = padded[..., pad:pad + 1, :]
    padded[..., pad + h:, :] = padded[..., pad + h - 1:pad + h, :]
    return padded


def _windows_of(padded: Tensor, dilations: Sequence[int], h: int,
                w: int) -> List[Tensor]:
    return [padded[..., t:t + h, l:l + w]
            for t, l in neighbor_windows(dilations)]


def neighbor_views(x: Tensor, dilations: Sequence[int]) -> List[Tensor]:
    """The 8 dilated neighbour maps of every pixel, replicate-padded, as
    views of one padded tensor (no copies).

    One replicate pad by the largest dilation serves every dilation: a
    wider replicate pad repeats the same border values, so each window is
    exactly the official per-dilation neighbour map.

    Args:
        x (Tensor): Maps, shape (B, C, H, W).
        dilations (Sequence[int]): Dilations d; neighbour j of dilation d is
            at offset ``d * NEIGHBOR_OFFSETS[j]``, coordinates clamped to
            the map (replicate padding).

    Returns:
        list[Tensor]: 8 * len(dilations) views (B, C, H, W),
        dilation-major.
    """
    _check_dilations(dilations)
    pad = max(dilations)
    h, w = x.shape[-2:]
    padded = x.new_empty(*x.shape[:-2], h + 2 * pad, w + 2 * pad)
    padded[..., pad:pad + h, pad:pad + w] = x
    return _windows_of(_fill_replicate_border_(padded, pad), dilations, h, w)


def dilated_neighbors(x: Tensor, dilations: Sequence[int]) -> Tensor:
    """``neighbor_views`` stacked: shape (B, C, 8 * len(dilations), H, W).

    Args:
        x (Tensor): Maps, shape (B, C, H, W).
        dilations (Sequence[int]): Dilations, as in ``neighbor_views``.

    Returns:
        Tensor: Shape (B, C, 8 * len(dilations), H, W), dilation-major.
    """
    return torch.stack(neighbor_views(x, dilations), dim=2)


def neighbor_distances(dilations: Sequence[int],
                       device: torch.device = None) -> Tensor:
    """Spatial distance of each neighbour, rho_j = d * (sqrt(2) or 1).

    Args:
        dilations (Sequence[int]): Dilations, as in ``dilated_neighbors``.
        device (torch.device, optional): Output device. Defaults to None.

    Returns:
        Tensor: float32, shape (8 * len(dilations), ).
    """
    _check_dilations(dilations)
    unit = torch.tensor(
        [math.sqrt(2) if dy and dx else 1.0 for dy, dx in NEIGHBOR_OFFSETS],
        device=device)
    return torch.cat([unit * d for d in dilations])


def _neighbor_std(views: List[Tensor]) -> Tensor:
    """Unbiased std over the neighbour views, (B, C, H, W): ``torch.std``'s
    value by the two-pass formula, accumulated view by view (within 1e-6
    relative; no (B, C, 8D, H, W) stack)."""
    total = views[0] + views[1]
    for view in views[2:]:
        total += view
    mean = total / len(views)
    squares = (views[0] - mean).square_()
    for view in views[1:]:
        squares += (view - mean).square_()
    return (squares / (len(views) - 1)).sqrt_()


def par_affinity(image: Tensor,
                 dilations: Sequence[int] = (1, 2, 4, 8, 12, 24),
                 w1: float = 0.3,
                 w2: float = 0.01) -> Tensor:
    """Neighbour affinities A_j = softmax_j(a) + w2 * softmax_j(p).

    ``a_j = mean_ch[-(|I_j - I| / (std_ch + 1e-8) / w1) ** 2]`` with the
    unbiased std over the neighbour intensities of each channel, and
    ``p_j = -(rho_j / (std(rho) + 1e-8) / w1) ** 2``. Rows sum to 1 + w2;
    they are not renormalised.

    Args:
        image (Tensor): Images in [0, 1], shape (B, 3, H, W).
        dilations (Sequence[int]): Dilations. Defaults to
            (1, 2, 4, 8, 12, 24).
        w1 (float): Temperature. Defaults to 0.3.
        w2 (float): Weight of the position term. Defaults to 0.01.

    Returns:
        Tensor: Affinities, shape (B, 1, 8 * len(dilations), H, W).
    """
    if image.dim() != 4:
        raise ValueError('par: image must be (B, 3, H, W), got '
                         f'{tuple(image.shape)}')
    views = neighbor_views(image, dilations)
    std = _neighbor_std(views) + 1e-8
    # (B, 8D, H, W), one neighbour at a time: no (B, 3, 8D, H, W) stack
    aff = torch.stack(
        [(-((v - image).abs_() / std / w1)**2).mean(dim=1) for v in views],
        dim=1)
    dist = neighbor_distances(dilations, image.device).to(image.dtype)
    dist = dist.view(1, -1, 1, 1)
    pos_aff = -(dist / (dist.std(dim=1, keepdim=True) + 1e-8) / w1)**2
    return (aff.softmax(dim=1) + w2 * pos_aff.softmax(dim=1)).unsqueeze(1)


def par_propagate(probs: Tensor, affinity: Tensor, dilations: Sequence[int],
                  num_iter: int) -> Tensor:
    """Repeat ``P <- sum_j A_j * P_j`` ``num_iter`` times.

    The sum is accumulated window by window (``addcmul_`` on views of one
    padded map) instead of materialising the (B, K, 8D, H, W) neighbour
    stack: the same terms in the same order, up to float rounding of the
    summation (about 1e-6 relative after ten steps), and 10-20 times
    faster on the CPU.

    Args:
        probs (Tensor): Maps to propagate, shape (B, K, H, W).
        affinity (Tensor): From ``par_affinity``, (B, 1, 8 * D, H, W).
        dilations (Sequence[int]): The dilations used for ``affinity``.
        num_iter (int): Number of propagation steps.

    Returns:
        Tensor: Propagated maps, shape (B, K, H, W).
    """
    if affinity.shape[2] != 8 * len(dilations):
        raise ValueError(f'par: affinity has {affinity.shape[2]} '
                         f'neighbours, dilations {tuple(dilations)} give '
                         f'{8 * len(dilations)}')
    weights = affinity.unbind(dim=2)  # 8D x (B, 1, H, W)
    pad = max(dilations)
    h, w = probs.shape[-2:]
    # Two padded buffers, written in turn: each step accumulates into the
    # centre of the other one, then fills its border (no allocations).
    buffers = [probs.new_empty(*probs.shape[:-2], h + 2 * pad, w + 2 * pad)
               for _ in range(2)]
    centre = buffers[0][..., pad:pad + h, pad:pad + w]
    centre.copy_(probs)
    for step in range(num_iter):
        views = _windows_of(
            _fill_replicate_border_(buffers[step % 2], pad), dilations, h, w)
        centre = buffers[(step + 1) % 2][..., pad:pad + h, pad:pad + w]
        torch.mul(views[0], weights[0], out=centre)
        for view, weight in zip(views[1:], weights[1:]):
            centre.addcmul_(view, weight)
    return centre.contiguous()


@fp32_island
def par_refine(image: Tensor,
               probs: Tensor,
               dilations: Sequence[int] = (1, 2, 4, 8, 12, 24),
               num_iter: int = 10,
               w1: float = 0.3,
               w2: float = 0.01) -> Tensor:
    """Refine class probabilities with image affinities (algorithm.md §4.2).

    Args:
        image (Tensor): Images in [0, 1], shape (B, 3, H, W).
        probs (Tensor): Probabilities, (B, K, h, w); resized to (H, W)
            first (bilinear, align_corners=True, as the official code).
        dilations (Sequence[int]): Dilations. Defaults to
            (1, 2, 4, 8, 12, 24).
        num_iter (int): Propagation steps. Defaults to 10.
        w1 (float): Temperature. Defaults to 0.3.
        w2 (float): Position-term weight. Defaults to 0.01.

    Returns:
        Tensor: Refined maps, shape (B, K, H, W) (not renormalised).
    """
    if probs.dim() != 4 or probs.shape[0] != image.shape[0]:
        raise ValueError('par: probs must be (B, K, h, w) with the image '
                         f'batch size, got {tuple(probs.shape)} for image '
                         f'{tuple(image.shape)}')
    probs = F.interpolate(
        probs, size=image.shape[-2:], mode='bilinear', align_corners=True)
    affinity = par_affinity(image, dilations, w1, w2)
    return par_propagate(probs, affinity, dilations, num_iter)


@MODELS.register_module()
class PAR(nn.Module):
    """Parameter-free module wrapper of ``par_refine``.

    Args:
        dilations (Sequence[int]): Dilations. Defaults to
            (1, 2, 4, 8, 12, 24).
        num_iter (int): Propagation steps. Defaults to 10.
        w1 (float): Temperature. Defaults to 0.3.
        w2 (float): Position-term weight. Defaults to 0.01.
    """

    def __init__(self,
                 dilations: Sequence[int] = (1, 2, 4, 8, 12, 24),
                 num_iter: int = 10,
                 w1: float = 0.3,
                 w2: float = 0.01) -> None:
        super().__init__()
        _check_dilations(dilations)
        self.dilations = tuple(dilations)
        self.num_iter = num_iter
        self.w1 = w1
        self.w2 = w2

    def forward(self, image: Tensor, probs: Tensor) -> Tensor:
        """Refine ``probs`` (B, K, h, w) with ``image`` (B, 3, H, W).

        Returns:
            Tensor: Refined maps, shape (B, K, H, W).
        """
        return par_refine(image, probs, self.dilations, self.num_iter, self.w1,
                          self.w2)

    def extra_repr(self) -> str:
        return (f'dilations={self.dilations}, num_iter={self.num_iter}, '
                f'w1={self.w1}, w2={self.w2}')
