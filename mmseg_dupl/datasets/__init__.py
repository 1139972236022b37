# Copyright (c) OpenMMLab. All rights reserved.
from .coco_wsss_dataset import COCOWSSSDataset
from .transforms import *  # noqa: F401,F403
from .voc_wsss_dataset import VOCWSSSDataset

__all__ = ['VOCWSSSDataset', 'COCOWSSSDataset']
