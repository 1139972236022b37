# Copyright (c) OpenMMLab. All rights reserved.
from .dupl_vision_transformer import DuPLVisionTransformer
from .timm_vit_converter import timm_vit_to_mmpretrain

__all__ = ['DuPLVisionTransformer', 'timm_vit_to_mmpretrain']
