# Copyright (c) OpenMMLab. All rights reserved.
"""How every hook of the plugin reaches the model (mmdet's MeanTeacherHook
pattern; never ``runner.model.module``, which fails without DDP)."""
from mmengine.model import is_model_wrapper
from torch import nn


def unwrap_model(runner) -> nn.Module:
    """The runner's model without its DDP / FSDP wrapper."""
    model = runner.model
    return model.module if is_model_wrapper(model) else model
