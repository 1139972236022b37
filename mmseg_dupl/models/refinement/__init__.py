# Copyright (c) OpenMMLab. All rights reserved.
"""CAM refinement: PAR and the two-threshold pseudo labels (algorithm.md
§4.2, §4.3)."""
from .par import PAR, par_refine
from .refine_cams import denormalize_truncated, refine_cams_with_dynamic_thres

__all__ = [
    'PAR', 'par_refine', 'refine_cams_with_dynamic_thres',
    'denormalize_truncated'
]
