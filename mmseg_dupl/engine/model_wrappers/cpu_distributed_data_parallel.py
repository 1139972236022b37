# Copyright (c) OpenMMLab. All rights reserved.
"""DDP for gloo on hosts without CUDA (``tools/dist_train.sh`` on a CPU)."""
from mmengine.logging import print_log
from mmengine.model import MMDistributedDataParallel, revert_sync_batchnorm
from mmengine.registry import MODEL_WRAPPERS
from torch import nn


def count_sync_batchnorm(module: nn.Module) -> int:
    """Number of SyncBN layers (torch's or mmcv's) in ``module``."""
    return sum('SyncBatchNorm' in type(m).__name__ for m in module.modules())


# mmengine's root registry: Runner.wrap_model looks the type up there
# (``MODEL_WRAPPERS.get``) without the default scope.
@MODEL_WRAPPERS.register_module()
class CPUDistributedDataParallel(MMDistributedDataParallel):
    """``MMDistributedDataParallel`` on the CPU.

    SyncBN layers (the norm of mmseg's stock CNN configs) only run on CUDA
    tensors, so they become BatchNorm layers with per-process statistics:
    what mmengine's Runner already does for a non-distributed run
    (``revert_sync_batchnorm``). ``device_ids`` is None, DDP's CPU setting.

    Args:
        module (nn.Module): The model.
        **kwargs: Passed to ``MMDistributedDataParallel``.
    """

    def __init__(self, module: nn.Module, **kwargs) -> None:
        num_sync_bn = count_sync_batchnorm(module)
        if num_sync_bn:
            print_log(
                f'CPU distributed training: {num_sync_bn} SyncBN layers '
                'reverted to BatchNorm (per-process statistics)',
                logger='current')
            module = revert_sync_batchnorm(module)
        kwargs['device_ids'] = None
        super().__init__(module=module, **kwargs)
