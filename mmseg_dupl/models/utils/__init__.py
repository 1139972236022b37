# Copyright (c) OpenMMLab. All rights reserved.
"""Glue shared by the model folders: float32 islands under autocast and the
single-student checkpoint keys."""
from .precision import fp32_island
from .student_keys import share_single_student

__all__ = ['fp32_island', 'share_single_student']
