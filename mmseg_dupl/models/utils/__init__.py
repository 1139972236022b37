# Copyright (c) OpenMMLab. All rights reserved.
from .par import PAR

__all__ = ['PAR']
