# Copyright (c) OpenMMLab. All rights reserved.
from .dupl_student import DuPLStudent

__all__ = ['DuPLStudent']
