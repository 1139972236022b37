# Copyright (c) OpenMMLab. All rights reserved.
"""DuPL weakly supervised semantic segmentation for MMSegmentation 1.x.

Importing the package registers every module into mmseg's registries (what
``custom_imports=dict(imports=['mmseg_dupl'])`` relies on) and allow-lists
the types mmengine stores in checkpoints, so ``--resume``, ``load_from``
and ``tools/test.py`` work with torch's safe (weights_only) loading on.
"""
from .utils.safe_checkpoint import allow_mmengine_checkpoint_types
from .version import __version__

allow_mmengine_checkpoint_types()

from . import (datasets, engine, evaluation, models,  # noqa: E402,F401
               visualization)

__all__ = [
    '__version__', 'datasets', 'engine', 'evaluation', 'models',
    'visualization'
]
