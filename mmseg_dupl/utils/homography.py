# Copyright (c) OpenMMLab. All rights reserved.
"""Move pixels, labels and logits between views related by a homography.

Convention (the one mmdet's geometric transforms use):

* Coordinates are **continuous pixel-edge coordinates**: pixel ``(i, j)``
  covers ``[j, j + 1) x [i, i + 1)`` and its centre is ``(j + 0.5, i + 0.5)``
  in ``(x, y)`` order. A horizontal flip of a width-``w`` image is then
  ``x' = w - x`` and a rescale by ``s`` is ``x' = s * x``, with no half-pixel
  terms.
* ``H`` is a ``3 x 3`` matrix acting on homogeneous column vectors
  ``(x, y, 1)`` and maps the **source** frame to the **destination** frame.
  Transforms compose as ``H = H_op @ H_prev``.
* A tensor may live on a coarser grid than the image frame that ``H`` is
  defined in (e.g. the 21x21 logits of a 336x336 strong view): pass the
  frame sizes and the coordinates are rescaled to the tensor grids, which
  assumes a tensor cell of the grid covers ``frame / grid`` frame pixels
  (the half-pixel, ``align_corners=False`` convention).

The warp is backward mapping: every destination pixel centre is sent
through ``inv(H)`` to the source frame and sampled there with
``grid_sample(align_corners=False)``.
"""
from typing import Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

ArrayOrTensor = Union[np.ndarray, Tensor]

_MODES = ('bilinear', 'nearest')
_PADDINGS = ('border', 'fill')


def hflip_matrix(width: float) -> np.ndarray:
    """Homography of a horizontal flip of an image ``width`` pixels wide.

    Args:
        width (float): Image width ``w`` in pixels.

    Returns:
        np.ndarray: float32 ``(3, 3)`` matrix ``x' = w - x, y' = y``.
    """
    return np.array([[-1., 0., width], [0., 1., 0.], [0., 0., 1.]],
                    dtype=np.float32)


def scale_matrix(scale: Union[float, Tuple[float, float]]) -> np.ndarray:
    """Homography of a rescale about the top-left image corner.

    Args:
        scale (float | tuple[float, float]): One factor for both axes, or
            ``(scale_x, scale_y)``.

    Returns:
        np.ndarray: float32 ``(3, 3)`` matrix ``x' = sx * x, y' = sy * y``.
    """
    sx, sy = (scale, scale) if np.isscalar(scale) else scale
    return np.array([[sx, 0., 0.], [0., sy, 0.], [0., 0., 1.]],
                    dtype=np.float32)


def translation_matrix(tx: float, ty: float) -> np.ndarray:
    """Homography of a translation ``x' = x + tx, y' = y + ty``.

    Args:
        tx (float): Shift along x (columns) in pixels.
        ty (float): Shift along y (rows) in pixels.

    Returns:
        np.ndarray: float32 ``(3, 3)`` matrix.
    """
    return np.array([[1., 0., tx], [0., 1., ty], [0., 0., 1.]],
                    dtype=np.float32)


def _batched_matrix(H: ArrayOrTensor, batch: int,
                    device: torch.device) -> Tensor:
    """Return ``H`` as a float64 ``(B, 3, 3)`` tensor on ``device``."""
    H = torch.as_tensor(H, device=device).to(torch.float64)
    if H.dim() == 2:
        H = H.expand(batch, 3, 3)
    if H.shape != (batch, 3, 3):
        raise ValueError(f'warp_by_homography: H must be (3, 3) or '
                         f'({batch}, 3, 3), got {tuple(H.shape)}')
    return H


def _destination_centres(dst_hw: Tuple[int, int],
                         dst_frame_hw: Tuple[int, int],
                         device: torch.device) -> Tensor:
    """Pixel centres of the output grid in destination-frame coordinates.

    Returns:
        Tensor: float64 ``(3, h * w)`` homogeneous ``(x, y, 1)`` columns.
    """
    h, w = dst_hw
    ys = (torch.arange(h, dtype=torch.float64, device=device) + 0.5)
    xs = (torch.arange(w, dtype=torch.float64, device=device) + 0.5)
    ys = ys * (dst_frame_hw[0] / h)
    xs = xs * (dst_frame_hw[1] / w)
    yy, xx = torch.meshgrid(ys, xs, indexing='ij')
    ones = torch.ones_like(xx)
    return torch.stack([xx.reshape(-1), yy.reshape(-1), ones.reshape(-1)])


def _source_points(H: Tensor, dst_hw: Tuple[int, int],
                   dst_frame_hw: Tuple[int, int]) -> Tensor:
    """Map destination pixel centres back to the source frame.

    Args:
        H (Tensor): float64 ``(B, 3, 3)`` source-to-destination homography.

    Returns:
        Tensor: float64 ``(B, h, w, 2)`` source-frame ``(x, y)``.
    """
    pts = _destination_centres(dst_hw, dst_frame_hw, H.device)
    src = torch.linalg.inv(H) @ pts  # (B, 3, h*w)
    xy = src[:, :2] / src[:, 2:3]
    return xy.transpose(1, 2).reshape(H.shape[0], dst_hw[0], dst_hw[1], 2)


def _check_args(x: Tensor, mode: str, padding: str) -> None:
    if mode not in _MODES:
        raise ValueError(f'warp_by_homography: mode must be one of {_MODES},'
                         f' got {mode!r}')
    if padding not in _PADDINGS:
        raise ValueError(f'warp_by_homography: padding must be one of '
                         f'{_PADDINGS}, got {padding!r}')
    if x.dim() not in (3, 4):
        raise ValueError(f'warp_by_homography: x must be (B, C, h, w) or '
                         f'(B, h, w), got {tuple(x.shape)}')
    if mode == 'bilinear' and not x.is_floating_point():
        raise ValueError('warp_by_homography: bilinear mode needs a '
                         f'floating-point tensor, got {x.dtype}')


def warp_by_homography(x: Tensor,
                       H: ArrayOrTensor,
                       dst_hw: Sequence[int],
                       src_frame_hw: Optional[Sequence[int]] = None,
                       dst_frame_hw: Optional[Sequence[int]] = None,
                       mode: str = 'bilinear',
                       padding: str = 'border',
                       fill: float = 255) -> Tensor:
    """Warp ``x`` from its view to another view related by ``H``.

    ``H`` maps source-frame continuous pixel coordinates (centre at
    ``i + 0.5``) to destination-frame coordinates. Each output pixel centre
    is mapped through ``inv(H)``, rescaled to ``x``'s grid, normalised as
    ``2 * u / W_src - 1`` and sampled with ``grid_sample(align_corners=
    False)``. Typical uses:

    * weak-view labels into the strong view: ``mode='nearest',
      padding='fill', fill=255``;
    * strong-view logits back to the weak view (pass ``inv(H)``):
      ``mode='bilinear', padding='border'``, which for DuPL's flip + x0.75
      equals ``F.interpolate(torch.flip(S, [3]), size, mode='bilinear',
      align_corners=False)``.

    Args:
        x (Tensor): ``(B, C, h, w)`` float maps or ``(B, h, w)`` labels
            (any dtype in nearest mode; the output keeps ``x.dtype``).
        H (np.ndarray | Tensor): ``(3, 3)`` or ``(B, 3, 3)`` homography from
            the source frame to the destination frame.
        dst_hw (Sequence[int]): Output grid size ``(h_out, w_out)``.
        src_frame_hw (Sequence[int], optional): Size of the image frame that
            ``H``'s source coordinates refer to. Defaults to ``x``'s size.
        dst_frame_hw (Sequence[int], optional): Size of the image frame that
            ``H``'s destination coordinates refer to. Defaults to
            ``dst_hw``.
        mode (str): ``'bilinear'`` or ``'nearest'``. Defaults to
            ``'bilinear'``.
        padding (str): ``'border'`` repeats the edge values for points that
            fall outside the source; ``'fill'`` writes ``fill`` there (a
            destination pixel is outside when its centre maps outside
            ``[0, W_src) x [0, H_src)``). Defaults to ``'border'``.
        fill (float): Value for outside pixels with ``padding='fill'``.
            Defaults to 255 (the ignore index).

    Returns:
        Tensor: ``(B, C, h_out, w_out)`` or ``(B, h_out, w_out)``, same dtype
        as ``x``.
    """
    _check_args(x, mode, padding)
    is_label = x.dim() == 3
    src = x[:, None] if is_label else x
    b, _, h_src, w_src = src.shape
    dst_hw = (int(dst_hw[0]), int(dst_hw[1]))
    src_frame_hw = tuple(src_frame_hw or (h_src, w_src))
    dst_frame_hw = tuple(dst_frame_hw or dst_hw)

    Hb = _batched_matrix(H, b, src.device)
    xy = _source_points(Hb, dst_hw, dst_frame_hw)  # source-frame coords
    # normalise by the frame size: identical to rescaling to x's grid and
    # normalising by the grid size (align_corners=False convention)
    norm = torch.tensor([src_frame_hw[1], src_frame_hw[0]],
                        dtype=torch.float64, device=src.device)
    grid = 2 * xy / norm - 1
    # half-precision grids would quantise coordinates to whole pixels
    sample_dtype = (torch.float64
                    if src.dtype == torch.float64 else torch.float32)
    out = F.grid_sample(
        src.to(sample_dtype),
        grid.to(sample_dtype),
        mode=mode,
        padding_mode='border',
        align_corners=False)
    if padding == 'fill':
        inside = (grid >= -1) & (grid < 1)
        inside = inside.all(dim=-1)[:, None]
        out = torch.where(inside, out, out.new_tensor(fill))
    out = out.to(x.dtype)
    return out[:, 0] if is_label else out
