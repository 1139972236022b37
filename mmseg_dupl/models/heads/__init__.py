# Copyright (c) OpenMMLab. All rights reserved.
from .large_fov_head import LargeFOVHead

__all__ = ['LargeFOVHead']
