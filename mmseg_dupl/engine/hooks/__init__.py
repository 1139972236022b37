# Copyright (c) OpenMMLab. All rights reserved.
from . import removed_schedule_hooks  # noqa: F401
from .cam_visualization_hook import CAMVisualizationHook
from .progress_bar_hook import ProgressBarHook

__all__ = ['CAMVisualizationHook', 'ProgressBarHook']
