# Copyright (c) OpenMMLab. All rights reserved.
from .checked_runner import CheckedRunner, build_runner
from .cpu_launch_runner import CPULaunchRunner
from .resume_candidates import choose_resume_checkpoint

__all__ = [
    'CheckedRunner', 'CPULaunchRunner', 'build_runner',
    'choose_resume_checkpoint'
]
