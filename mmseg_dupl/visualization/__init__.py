# Copyright (c) OpenMMLab. All rights reserved.
from .cam_overlay import cam_to_heatmap, colorize_label, make_grid, overlay
from .palette import voc_colormap

__all__ = [
    'cam_to_heatmap', 'colorize_label', 'make_grid', 'overlay', 'voc_colormap'
]
