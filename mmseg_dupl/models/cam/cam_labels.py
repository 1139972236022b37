# Copyright (c) OpenMMLab. All rights reserved.
"""CAM -> label rules (algorithm.md §4.1, §10.1) and the PTC targets
(algorithm.md §5).

Label values everywhere: 0 = background, 1..C = classes, ``ignore_index``
(255) = ignored. Three labelling functions, one per job:

- ``cam_to_bkg_label``: bg where the best present-class CAM <= ``bkg_thr``
  (the eval path, algorithm.md §10.1);
- ``cam_to_label_static_thr``: the official ``cam_to_label`` with
  ``ignore_mid``: one float high threshold for the batch;
- ``cam_to_label_dynamic_thr``: the official ``cam_to_label_dynamic_cls``:
  one high threshold per image (tau_i).

Each takes an optional ``img_box``; everything outside it is ignored.
"""
from typing import Optional, Tuple, Union

import torch
from torch import Tensor
from .multi_scale import _check_dim

SizeType = Union[int, Tuple[int, int]]


def _best_present_class(cam: Tensor,
                        cls_labels: Tensor) -> Tuple[Tensor, Tensor]:
    """``(value, label)`` of the best present-class CAM per pixel.

    Args:
        cam (Tensor): Normalised CAMs, shape (B, C, H, W).
        cls_labels (Tensor): Multi-hot image labels, shape (B, C).

    Returns:
        tuple[Tensor]: ``value`` (B, H, W) and ``label`` = class index + 1,
        long (B, H, W).
    """
    _check_dim(cam, 4, 'cam', '(B, C, H, W)')
    b, c = cam.shape[:2]
    if cls_labels.shape != (b, c):
        raise ValueError(f'cam: cls_labels must be (B, C) = ({b}, {c}), '
                         f'got {tuple(cls_labels.shape)}')
    valid_cam = cam * cls_labels.to(cam)[:, :, None, None]
    value, label = valid_cam.max(dim=1)
    return value, label + 1


def _ignore_outside(label: Tensor, img_box: Optional[Tensor],
                    ignore_index: int) -> Tensor:
    """``label`` with everything outside ``img_box`` (B, 4) ignored."""
    if img_box is None:
        return label
    # Built where the boxes live (usually the CPU metainfo), so the
    # non-negativity check costs no device sync.
    inside = box_mask(img_box, *label.shape[-2:]).to(label.device)
    return label.masked_fill(~inside, ignore_index)


def cam_to_bkg_label(cam: Tensor,
                     cls_labels: Tensor,
                     bkg_thr: float = 0.5,
                     img_box: Optional[Tensor] = None,
                     ignore_index: int = 255) -> Tensor:
    """CAM label with one background threshold (the eval path, 10.1).

    ``v, idx = max_c(cam * cls_labels)``; label ``idx + 1``, 0 where
    ``v <= bkg_thr``.

    Args:
        cam (Tensor): Normalised CAMs, shape (B, C, H, W).
        cls_labels (Tensor): Multi-hot image labels, shape (B, C).
        bkg_thr (float): Background threshold. Defaults to 0.5.
        img_box (Tensor, optional): ``[r0, r1, c0, c1]`` valid rows/cols in
            this map's coordinates, shape (B, 4). Defaults to None.
        ignore_index (int): Ignore value. Defaults to 255.

    Returns:
        Tensor: Labels, long, shape (B, H, W).
    """
    value, label = _best_present_class(cam, cls_labels)
    label[value <= bkg_thr] = 0
    return _ignore_outside(label, img_box, ignore_index)


def _two_threshold_label(cam: Tensor, cls_labels: Tensor,
                         high: Union[float, Tensor], low_thr: float,
                         img_box: Optional[Tensor], bkg_thr: float,
                         ignore_index: int) -> Tensor:
    """The official ``ignore_mid`` rule; ``high`` a float or (B, 1, 1)."""
    value, label = _best_present_class(cam, cls_labels)
    label[value <= bkg_thr] = 0
    label[value <= high] = ignore_index
    label[value <= low_thr] = 0
    return _ignore_outside(label, img_box, ignore_index)


def cam_to_label_static_thr(cam: Tensor,
                            cls_labels: Tensor,
                            high_thr: float,
                            low_thr: float,
                            img_box: Optional[Tensor] = None,
                            bkg_thr: float = 0.5,
                            ignore_index: int = 255) -> Tensor:
    """Two-threshold CAM label with one high threshold (algorithm.md §4.1).

    The official ``cam_to_label(..., ignore_mid=True)``: ``v, idx =
    max_c(cam * cls_labels)``, label ``idx + 1``; ``v <= bkg_thr`` -> 0,
    then ``low < v <= high`` -> ``ignore_index`` and ``v <= low`` -> 0
    (so ``bkg_thr`` only matters above ``high``).

    The box is applied as given, in the label's own grid. For PTC token
    labels the official code applies the 448-pixel box to the 28x28 token
    grid (quirk kept by default); ``scale_img_box`` gives the corrected
    token-grid box.

    Args:
        cam (Tensor): Normalised CAMs, shape (B, C, H, W).
        cls_labels (Tensor): Multi-hot image labels, shape (B, C).
        high_thr (float): High threshold tau_h.
        low_thr (float): Low threshold tau_l.
        img_box (Tensor, optional): ``[r0, r1, c0, c1]`` valid rows/cols in
            this map's coordinates, shape (B, 4). Defaults to None.
        bkg_thr (float): Background threshold. Defaults to 0.5.
        ignore_index (int): Ignore value. Defaults to 255.

    Returns:
        Tensor: Labels, long, shape (B, H, W).
    """
    if isinstance(high_thr, Tensor) and high_thr.dim() > 0:
        raise ValueError('cam: cam_to_label_static_thr takes one float '
                         'high_thr; per-image thresholds go to '
                         'cam_to_label_dynamic_thr')
    return _two_threshold_label(cam, cls_labels, high_thr, low_thr, img_box,
                                bkg_thr, ignore_index)


def cam_to_label_dynamic_thr(cam: Tensor,
                             cls_labels: Tensor,
                             high_thr: Tensor,
                             low_thr: float,
                             img_box: Optional[Tensor] = None,
                             bkg_thr: float = 0.5,
                             ignore_index: int = 255) -> Tensor:
    """Two-threshold CAM label with a high threshold per image (algorithm.md
    §4.1,
    7): the official ``cam_to_label_dynamic_cls``, i.e.
    ``cam_to_label_static_thr`` with image i's ``high_thr[i]`` (tau_i).

    Args:
        cam (Tensor): Normalised CAMs, shape (B, C, H, W).
        cls_labels (Tensor): Multi-hot image labels, shape (B, C).
        high_thr (Tensor): Per-image high thresholds tau_i, shape (B,).
        low_thr (float): Low threshold tau_l.
        img_box (Tensor, optional): As in ``cam_to_label_static_thr``.
        bkg_thr (float): Background threshold. Defaults to 0.5.
        ignore_index (int): Ignore value. Defaults to 255.

    Returns:
        Tensor: Labels, long, shape (B, H, W).
    """
    _check_dim(cam, 4, 'cam', '(B, C, H, W)')
    b = cam.shape[0]
    if not isinstance(high_thr, Tensor) or high_thr.shape != (b, ):
        got = tuple(high_thr.shape) if isinstance(high_thr, Tensor) \
            else type(high_thr).__name__
        raise ValueError(f'cam: a per-image high_thr must be (B,) = ({b},), '
                         f'got {got}')
    high = high_thr.to(cam).view(b, 1, 1)
    return _two_threshold_label(cam, cls_labels, high, low_thr, img_box,
                                bkg_thr, ignore_index)


def box_mask(img_box: Tensor, height: int, width: int) -> Tensor:
    """Bool mask of the rows ``[r0, r1)`` and columns ``[c0, c1)``.

    Same as Python slicing ``[r0:r1, c0:c1]`` for non-negative values
    (ends past the map are clipped, empty when start >= end).

    Args:
        img_box (Tensor): Boxes ``[r0, r1, c0, c1]``, shape (B, 4).
        height (int): Map height H.
        width (int): Map width W.

    Returns:
        Tensor: Bool, shape (B, H, W).
    """
    if img_box.dim() != 2 or img_box.shape[1] != 4:
        raise ValueError('cam: img_box must be (B, 4) [r0, r1, c0, c1], '
                         f'got {tuple(img_box.shape)}')
    if bool((img_box < 0).any()):
        raise ValueError(f'cam: img_box must be non-negative, got {img_box}')
    box = img_box.long()
    rows = torch.arange(height, device=box.device)
    cols = torch.arange(width, device=box.device)
    in_rows = (rows >= box[:, :1]) & (rows < box[:, 1:2])
    in_cols = (cols >= box[:, 2:3]) & (cols < box[:, 3:4])
    return in_rows[:, :, None] & in_cols[:, None, :]


def scale_img_box(img_box: Tensor, src_size: SizeType,
                  dst_size: SizeType) -> Tensor:
    """Map a pixel box to a coarser grid (the corrected token-grid box).

    The official code (inherited from ToCo) applies the 448-pixel
    ``img_box`` unchanged to the 28x28 token grid when it builds the PTC
    labels, so a padded crop gets an empty or misplaced valid window. That
    quirk is the default (the labelling functions get the pixel box as is);
    this function is the switch-on correction: starts are floored and ends
    are ceiled (a token that overlaps the image at all stays valid), then
    clamped to the grid.

    Args:
        img_box (Tensor): ``[r0, r1, c0, c1]`` in ``src`` pixels, (B, 4).
        src_size (int | tuple[int, int]): Source (H, W), e.g. 448.
        dst_size (int | tuple[int, int]): Target (h, w), e.g. 28.

    Returns:
        Tensor: Long boxes in ``dst`` coordinates, shape (B, 4).
    """
    if img_box.dim() != 2 or img_box.shape[1] != 4:
        raise ValueError('cam: img_box must be (B, 4) [r0, r1, c0, c1], '
                         f'got {tuple(img_box.shape)}')
    src_h, src_w = (src_size, ) * 2 if isinstance(src_size, int) else src_size
    dst_h, dst_w = (dst_size, ) * 2 if isinstance(dst_size, int) else dst_size
    box = img_box.long()
    src = box.new_tensor([src_h, src_h, src_w, src_w])
    dst = box.new_tensor([dst_h, dst_h, dst_w, dst_w])
    floor = (box * dst).div(src, rounding_mode='floor')
    ceil = -(-box * dst).div(src, rounding_mode='floor')
    is_end = box.new_tensor([0, 1, 0, 1], dtype=torch.bool)
    scaled = torch.where(is_end, ceil, floor)
    return torch.minimum(scaled.clamp(min=0), dst)


def label_to_aff_mask(label: Tensor, ignore_index: int = 255) -> Tensor:
    """Pairwise token affinity targets for PTC (algorithm.md §5).

    Args:
        label (Tensor): Token labels, (B, N) or (B, h, w) (flattened).
        ignore_index (int): Ignore value. Defaults to 255.

    Returns:
        Tensor: Float (B, N, N): 1 where the two labels are equal (bg-bg
        included), 0 where they differ, ``ignore_index`` where either token
        is ignored and on the diagonal.
    """
    if label.dim() not in (2, 3):
        raise ValueError('cam: label must be (B, N) or (B, h, w), got '
                         f'{tuple(label.shape)}')
    label = label.flatten(1)
    n = label.shape[1]
    same = (label[:, :, None] == label[:, None, :]).float()
    ignored = label == ignore_index
    eye = torch.eye(n, dtype=torch.bool, device=label.device)
    invalid = ignored[:, :, None] | ignored[:, None, :] | eye
    return same.masked_fill(invalid, float(ignore_index))
