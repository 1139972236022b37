# Copyright (c) OpenMMLab. All rights reserved.
"""Pure numpy helpers to draw CAMs and label maps (RGB uint8 images).

Used by ``CAMVisualizationHook`` and ``tools/visualize_cams.py``; no
matplotlib, no OpenCV, so they run in any data worker or hook.
"""
from typing import Optional, Sequence

import numpy as np

IGNORE_INDEX = 255
IGNORE_COLOR = (255, 255, 255)
# matplotlib's jet segment data: (breakpoints, values) of r, g and b.
_JET = (
    ((0., .35, .66, .89, 1.), (0., 0., 1., 1., .5)),
    ((0., .125, .375, .64, .91, 1.), (0., 0., 1., 1., 0., 0.)),
    ((0., .11, .34, .65, 1.), (.5, 1., 1., 0., 0.)),
)


def _check_rgb(image: np.ndarray, name: str) -> None:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f'{name} must be an (H, W, 3) uint8 array, got '
                         f'{image.dtype} {image.shape}')


def cam_to_heatmap(cam: np.ndarray) -> np.ndarray:
    """Colour a CAM with the jet colour map (dark blue = 0, dark red = 1).

    The piecewise-linear ``jet`` of matplotlib (its segment data), without
    the 256-entry lookup table.

    Args:
        cam (np.ndarray): Activation map, shape (H, W), values in [0, 1]
            (clipped; NaN counts as 0).

    Returns:
        np.ndarray: RGB heat map, shape (H, W, 3), uint8.
    """
    cam = np.asarray(cam, dtype=np.float32)
    if cam.ndim != 2:
        raise ValueError(f'cam_to_heatmap: cam must be (H, W), got '
                         f'{cam.shape}')
    v = np.clip(np.nan_to_num(cam, nan=0.), 0., 1.)
    rgb = np.stack([np.interp(v, xs, ys) for xs, ys in _JET], axis=-1)
    return np.round(rgb * 255.).astype(np.uint8)


def overlay(image: np.ndarray, heatmap: np.ndarray,
            alpha: float = 0.5) -> np.ndarray:
    """Blend a heat map (or any colour image) onto an image.

    Args:
        image (np.ndarray): RGB image, (H, W, 3) uint8.
        heatmap (np.ndarray): RGB colours, (H, W, 3) uint8.
        alpha (float): Weight of the heat map, in [0, 1]. Defaults to 0.5.

    Returns:
        np.ndarray: ``(1 - alpha) * image + alpha * heatmap``, (H, W, 3)
        uint8 (rounded).
    """
    _check_rgb(image, 'overlay: image')
    _check_rgb(heatmap, 'overlay: heatmap')
    if image.shape != heatmap.shape:
        raise ValueError(f'overlay: image {image.shape} and heatmap '
                         f'{heatmap.shape} differ in size')
    if not 0. <= alpha <= 1.:
        raise ValueError(f'overlay: alpha must be in [0, 1], got {alpha}')
    mixed = (1. - alpha) * image.astype(np.float32) + \
        alpha * heatmap.astype(np.float32)
    return np.round(mixed).astype(np.uint8)


def colorize_label(label: np.ndarray,
                   palette: Sequence[Sequence[int]],
                   ignore_index: int = IGNORE_INDEX) -> np.ndarray:
    """Colour a label map with a class palette; ``ignore_index`` is white.

    Args:
        label (np.ndarray): Integer labels, shape (H, W).
        palette (Sequence): RGB colour per class id, (K, 3).
        ignore_index (int): Label drawn white. Defaults to 255.

    Returns:
        np.ndarray: (H, W, 3) uint8.
    """
    label = np.asarray(label)
    if label.ndim != 2:
        raise ValueError(f'colorize_label: label must be (H, W), got '
                         f'{label.shape}')
    colours = np.asarray(palette, dtype=np.uint8).reshape(-1, 3)
    bad = (label != ignore_index) & ((label < 0) |
                                     (label >= len(colours)))
    if bad.any():
        raise ValueError(
            f'colorize_label: label values {np.unique(label[bad])[:10]} '
            f'have no colour in a palette of {len(colours)} entries')
    out = np.empty(label.shape + (3, ), np.uint8)
    ignored = label == ignore_index
    out[ignored] = IGNORE_COLOR
    out[~ignored] = colours[label[~ignored].astype(np.int64)]
    return out


def make_grid(images: Sequence[np.ndarray],
              ncols: int,
              pad: int = 2,
              pad_value: int = 255,
              cell_hw: Optional[Sequence[int]] = None) -> np.ndarray:
    """Tile images row by row into one image.

    Cells have the size of the largest image (or ``cell_hw``); smaller
    images sit at the cell's top-left corner, the rest is ``pad_value``.

    Args:
        images (Sequence[np.ndarray]): (H_i, W_i, 3) uint8 images.
        ncols (int): Images per row.
        pad (int): Pixels between cells and around the grid. Defaults
            to 2.
        pad_value (int): Grey level of the padding. Defaults to 255.
        cell_hw (Sequence[int], optional): Cell size (H, W). Defaults to
            the largest image's.

    Returns:
        np.ndarray: (rows * (H + pad) + pad, ncols * (W + pad) + pad, 3)
        uint8.
    """
    if not images:
        raise ValueError('make_grid: no images given')
    if ncols < 1 or pad < 0:
        raise ValueError(f'make_grid: need ncols >= 1 and pad >= 0, got '
                         f'{ncols} and {pad}')
    for i, img in enumerate(images):
        _check_rgb(img, f'make_grid: images[{i}]')
    if cell_hw is None:
        cell_hw = (max(i.shape[0] for i in images),
                   max(i.shape[1] for i in images))
    ch, cw = cell_hw
    rows = -(-len(images) // ncols)
    grid = np.full((rows * (ch + pad) + pad, ncols * (cw + pad) + pad, 3),
                   pad_value, np.uint8)
    for idx, img in enumerate(images):
        r, c = divmod(idx, ncols)
        y, x = pad + r * (ch + pad), pad + c * (cw + pad)
        h, w = min(img.shape[0], ch), min(img.shape[1], cw)
        grid[y:y + h, x:x + w] = img[:h, :w]
    return grid
