# Copyright (c) OpenMMLab. All rights reserved.
from .poly_with_warmup_lr import PolyWithWarmupLR

__all__ = ['PolyWithWarmupLR']
