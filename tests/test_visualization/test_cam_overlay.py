# Copyright (c) OpenMMLab. All rights reserved.
"""Pure drawing helpers: jet colours, blending, label colours, grids."""
import numpy as np
import pytest
from matplotlib import colormaps

from mmseg_dupl.visualization import (cam_to_heatmap, colorize_label,
                                      make_grid, overlay)


def test_heatmap_matches_matplotlib_jet():
    cam = np.linspace(0, 1, 101, dtype=np.float32)[None].repeat(3, 0)
    heat = cam_to_heatmap(cam)
    assert heat.shape == (3, 101, 3) and heat.dtype == np.uint8
    jet = colormaps['jet'](cam[0])[:, :3] * 255
    assert np.abs(heat[0].astype(float) - jet).max() <= 5
    assert tuple(heat[0, 0]) == (0, 0, 128)  # cold = dark blue
    assert tuple(heat[0, -1]) == (128, 0, 0)  # hot = dark red


def test_heatmap_clips_and_rejects_bad_shape():
    heat = cam_to_heatmap(np.array([[-1., 2., np.nan]]))
    assert tuple(heat[0, 0]) == tuple(heat[0, 2]) == (0, 0, 128)
    assert tuple(heat[0, 1]) == (128, 0, 0)
    with pytest.raises(ValueError, match='cam must be'):
        cam_to_heatmap(np.zeros((1, 2, 2)))


def test_overlay_blends():
    img = np.full((2, 3, 3), 100, np.uint8)
    heat = np.full((2, 3, 3), 200, np.uint8)
    assert (overlay(img, heat, 0.25) == 125).all()
    assert (overlay(img, heat, 0.) == img).all()
    assert (overlay(img, heat, 1.) == heat).all()
    with pytest.raises(ValueError, match='alpha'):
        overlay(img, heat, 1.5)
    with pytest.raises(ValueError, match='differ'):
        overlay(img, heat[:1], 0.5)
    with pytest.raises(ValueError, match='uint8'):
        overlay(img.astype(np.float32), heat, 0.5)


def test_colorize_label():
    palette = [[0, 0, 0], [10, 20, 30], [40, 50, 60]]
    label = np.array([[0, 1], [2, 255]])
    out = colorize_label(label, palette)
    assert out.dtype == np.uint8 and out.shape == (2, 2, 3)
    assert tuple(out[0, 1]) == (10, 20, 30)
    assert tuple(out[1, 0]) == (40, 50, 60)
    assert tuple(out[1, 1]) == (255, 255, 255)
    with pytest.raises(ValueError, match='no colour'):
        colorize_label(np.array([[3]]), palette)


def test_make_grid_layout_and_padding():
    a = np.full((2, 3, 3), 10, np.uint8)
    b = np.full((4, 2, 3), 20, np.uint8)
    grid = make_grid([a, b, a], ncols=2, pad=1, pad_value=0)
    # cells 4 x 3, 2 rows x 2 cols
    assert grid.shape == (2 * 5 + 1, 2 * 4 + 1, 3)
    assert (grid[1:3, 1:4] == 10).all() and (grid[3:5, 1:4] == 0).all()
    assert (grid[1:5, 5:7] == 20).all() and (grid[1:5, 7] == 0).all()
    assert (grid[6:8, 1:4] == 10).all() and (grid[6:10, 5:8] == 0).all()
    with pytest.raises(ValueError, match='no images'):
        make_grid([], 1)
    with pytest.raises(ValueError, match=r'images\[1\]'):
        make_grid([a, a[..., 0]], 2)
