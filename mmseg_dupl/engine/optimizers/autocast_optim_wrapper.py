# Copyright (c) OpenMMLab. All rights reserved.
"""Mixed precision without a loss scaler, for devices mmengine's
``AmpOptimWrapper`` refuses (the CPU)."""
from contextlib import contextmanager
from typing import Iterator

import torch
from mmengine.optim import OptimWrapper
from mmengine.runner.amp import autocast
from mmseg.registry import OPTIM_WRAPPERS


@OPTIM_WRAPPERS.register_module()
class AutocastOptimWrapper(OptimWrapper):
    """Run the forward under ``autocast(device_type, dtype)``.

    mmengine 0.10.7's ``AmpOptimWrapper`` asserts a CUDA/NPU/MLU/MUSA device,
    so ``tools/train.py --amp`` picks this wrapper on CPU-only machines,
    with bf16 (which needs no loss scaling: its exponent range is fp32's).
    DuPL's CAM normalisation, PAR, GMM and losses stay fp32 inside
    (``fp32_island``).

    Args:
        dtype (str): ``'bfloat16'`` or ``'float16'``. Defaults to
            'bfloat16'.
        device_type (str): Autocast device type. Defaults to 'cpu'.
        **kwargs: Passed to ``OptimWrapper``.
    """

    def __init__(self,
                 dtype: str = 'bfloat16',
                 device_type: str = 'cpu',
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if dtype not in ('bfloat16', 'float16'):
            raise ValueError("optim_wrapper.dtype must be 'bfloat16' or "
                             f"'float16', got {dtype!r}")
        self.cast_dtype = getattr(torch, dtype)
        self.device_type = device_type

    @contextmanager
    def optim_context(self, model: torch.nn.Module) -> Iterator[None]:
        """Gradient-accumulation context of the parent, plus autocast."""
        with super().optim_context(model), autocast(
                device_type=self.device_type, dtype=self.cast_dtype):
            yield
