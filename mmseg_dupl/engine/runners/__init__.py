# Copyright (c) OpenMMLab. All rights reserved.
from .cpu_launch_runner import CPULaunchRunner

__all__ = ['CPULaunchRunner']
