# Copyright (c) OpenMMLab. All rights reserved.
from .check_seg_map import CheckSegMap
from .load_checked_annotations import LoadCheckedAnnotations
from .load_checked_image import LoadCheckedImageFromFile
from .multi_branch import MultiBranch
from .pack_wsss_inputs import PackWSSSInputs
from .random_crop_with_box import RandomCropWithValidBox
from .random_rescale import RandomRescale
from .strong_aug import StrongAug
from .toco_color_aug import ToCoColorAug

__all__ = [
    'CheckSegMap', 'LoadCheckedAnnotations', 'LoadCheckedImageFromFile', 'MultiBranch', 'PackWSSSInputs',
    'RandomCropWithValidBox', 'RandomRescale', 'StrongAug', 'ToCoColorAug'
]
