# Copyright (c) OpenMMLab. All rights reserved.
from .dual_student_segmentor import DualStudentSegmentor

__all__ = ['DualStudentSegmentor']
