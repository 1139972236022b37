# Copyright (c) OpenMMLab. All rights reserved.
"""Class activation maps and their labels (algorithm.md §3, §4.1)."""
from .cam_labels import (cam_to_bkg_label, cam_to_label_dynamic_thr,
                         cam_to_label_static_thr, label_to_aff_mask)
from .multi_scale import multi_scale_cam, normalize_cam

__all__ = [
    'multi_scale_cam', 'normalize_cam', 'cam_to_bkg_label',
    'cam_to_label_static_thr', 'cam_to_label_dynamic_thr',
    'label_to_aff_mask'
]
