# Copyright (c) OpenMMLab. All rights reserved.
from .coco_protocol_tta_model import COCOProtocolTTAModel
from .voc_protocol_tta_model import VOCProtocolTTAModel

__all__ = ['COCOProtocolTTAModel', 'VOCProtocolTTAModel']
