# Copyright (c) OpenMMLab. All rights reserved.
from .cpu_launch import (amp_optim_wrapper_type, prepare_cpu_distributed,
                         use_cpu_amp)
from .hooks import *  # noqa: F401,F403
from .model_wrappers import *  # noqa: F401,F403
from .optimizers import *  # noqa: F401,F403
from .runners import *  # noqa: F401,F403
from .schedulers import *  # noqa: F401,F403

__all__ = ['amp_optim_wrapper_type', 'prepare_cpu_distributed', 'use_cpu_amp']
