# Copyright (c) OpenMMLab. All rights reserved.
from .large_fov_head import LargeFOVHead
from .tiled_multilabel_cls_head import TiledMultiLabelClsHead

__all__ = ['LargeFOVHead', 'TiledMultiLabelClsHead']
