# Copyright (c) OpenMMLab. All rights reserved.
from .cam_overlay import cam_to_heatmap, colorize_label, make_grid, overlay

__all__ = ['cam_to_heatmap', 'colorize_label', 'make_grid', 'overlay']
