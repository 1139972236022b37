# Copyright (c) OpenMMLab. All rights reserved.
"""DuPL weakly supervised semantic segmentation for MMSegmentation 1.x.

Importing the package registers every module into mmseg's registries (what
``custom_imports=dict(imports=['mmseg_dupl'])`` relies on) and allow-lists
the types mmengine stores in checkpoints, so ``--resume``, ``load_from``
and ``tools/test.py`` work with torch's safe (weights_only) loading on.
It also lets mmengine resolve ``mmseg_dupl::`` config names (see
:func:`get_config_path` for the installed configs), and caches yapf's
formatting of config texts, which a Runner otherwise repeats at every
checkpoint save (:mod:`mmseg_dupl.utils.config_text_cache`).
"""
from .utils.config_text_cache import cache_config_formatting
from .utils.mim_files import get_config_path, register_config_prefix
from .utils.safe_checkpoint import allow_mmengine_checkpoint_types
from .version import __version__

allow_mmengine_checkpoint_types()
register_config_prefix()
cache_config_formatting()

from . import (datasets, engine, evaluation, models,  # noqa: E402,F401
               visualization)

__all__ = [
    '__version__', 'get_config_path', 'datasets', 'engine', 'evaluation',
    'models', 'visualization'
]
