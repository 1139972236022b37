# Copyright (c) OpenMMLab. All rights reserved.
from .config_text_cache import cache_config_formatting
from .homography import (hflip_matrix, scale_matrix, translation_matrix,
                         warp_by_homography)
from .mim_files import get_config_path, mim_root, register_config_prefix
from .safe_checkpoint import (allow_mmengine_checkpoint_types,
                              mmengine_checkpoint_safe_globals)

__all__ = [
    'hflip_matrix', 'scale_matrix', 'translation_matrix', 'warp_by_homography',
    'allow_mmengine_checkpoint_types', 'mmengine_checkpoint_safe_globals',
    'get_config_path', 'mim_root', 'register_config_prefix',
    'cache_config_formatting'
]
