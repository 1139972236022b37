# Copyright (c) OpenMMLab. All rights reserved.
from .dupl_vision_transformer import DuPLVisionTransformer

__all__ = ['DuPLVisionTransformer']
