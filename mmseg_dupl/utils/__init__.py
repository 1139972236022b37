# Copyright (c) OpenMMLab. All rights reserved.
from .homography import (hflip_matrix, scale_matrix, translation_matrix,
                         warp_by_homography)
from .safe_checkpoint import (allow_mmengine_checkpoint_types,
                              mmengine_checkpoint_safe_globals)

__all__ = [
    'hflip_matrix', 'scale_matrix', 'translation_matrix', 'warp_by_homography',
    'allow_mmengine_checkpoint_types', 'mmengine_checkpoint_safe_globals'
]
