# Copyright (c) OpenMMLab. All rights reserved.
from .checked_runner import CheckedRunner, build_runner
from .resume_candidates import choose_resume_checkpoint

__all__ = ['CheckedRunner', 'build_runner', 'choose_resume_checkpoint']
