# Copyright (c) OpenMMLab. All rights reserved.
"""Let ``tools/train.py --launcher pytorch`` and ``--amp`` work on hosts
without CUDA (CPU DDP with gloo, bf16 autocast)."""
import datetime

import torch
import torch.distributed as dist
from mmengine.config import Config


def prepare_cpu_distributed(cfg: Config) -> None:
    """Initialise gloo and a CPU DDP wrapper when launched without CUDA.

    mmengine 0.10.7's ``init_dist`` calls ``torch.cuda.set_device`` and its
    default DDP wrapper passes ``device_ids=[LOCAL_RANK]``; both fail
    without a CUDA driver. Opening the process group here makes the Runner
    skip ``init_dist``; ``device_ids=None`` is DDP's CPU setting. The
    default wrapper becomes :class:`CPUDistributedDataParallel`, which also
    reverts SyncBN (CUDA-only) to BatchNorm, so mmseg's stock SyncBN
    configs train on the CPU launcher too.

    ``env_cfg.dist_cfg`` reaches ``init_process_group`` as mmengine's
    ``init_dist`` passes it (:func:`process_group_kwargs`): ``timeout`` (in
    seconds) bounds every collective, so a rank that stops answering ends
    the job instead of hanging it.

    Args:
        cfg (Config): The training config (``launcher`` already set).
    """
    if cfg.get('launcher', 'none') == 'none' or torch.cuda.is_available():
        return
    if not dist.is_initialized():
        dist.init_process_group(**process_group_kwargs(cfg))
    wrapper = dict(cfg.get('model_wrapper_cfg') or {})
    if wrapper.get('type', 'MMDistributedDataParallel') == \
            'MMDistributedDataParallel':
        # the same wrapper, with SyncBN reverted to BN (CUDA-only)
        wrapper['type'] = 'CPUDistributedDataParallel'
    wrapper.update(device_ids=None)
    wrapper.setdefault('broadcast_buffers', False)
    wrapper.setdefault('find_unused_parameters',
                       cfg.get('find_unused_parameters', False))
    cfg.model_wrapper_cfg = wrapper


def process_group_kwargs(cfg: Config) -> dict:
    """``init_process_group`` arguments from ``env_cfg.dist_cfg``, as
    mmengine's ``init_dist`` builds them, for the CPU (gloo) launch.

    ``backend`` ``nccl`` (the stock default) becomes ``gloo``; ``timeout``
    is in seconds, as in mmengine (``dist_cfg=dict(timeout=1800)``);
    ``init_backend`` is mmengine's own switch and is dropped; any other
    key (``init_method``, ...) is passed through.

    Args:
        cfg (Config): The training config.

    Returns:
        dict: Keyword arguments of ``torch.distributed.init_process_group``.

    Raises:
        TypeError: ``timeout`` is not a number of seconds.
    """
    kwargs = dict(cfg.get('env_cfg', {}).get('dist_cfg', {}) or {})
    kwargs.pop('init_backend', None)
    backend = kwargs.pop('backend', 'gloo')
    kwargs['backend'] = 'gloo' if backend == 'nccl' else backend
    timeout = kwargs.get('timeout')
    if timeout is not None and not isinstance(timeout, datetime.timedelta):
        try:
            kwargs['timeout'] = datetime.timedelta(seconds=timeout)
        except TypeError as e:
            raise TypeError(
                'env_cfg.dist_cfg.timeout must be a number of seconds, got '
                f'{timeout!r}') from e
    return kwargs


def amp_optim_wrapper_type() -> str:
    """``AmpOptimWrapper`` where mmengine supports it (CUDA), else the
    loss-scaler-free bf16 ``AutocastOptimWrapper``."""
    return 'AmpOptimWrapper' if torch.cuda.is_available() else \
        'AutocastOptimWrapper'


def use_cpu_amp(cfg: Config) -> None:
    """Turn the ``AmpOptimWrapper`` that ``tools/train.py --amp`` asks for
    into the bf16 ``AutocastOptimWrapper`` on hosts without CUDA
    (mmengine 0.10.7's refuses to build there); a no-op with CUDA.

    Args:
        cfg (Config): The training config, changed in place.
    """
    wrapper = cfg.get('optim_wrapper') or {}
    if wrapper.get('type') != 'AmpOptimWrapper':
        return
    wrapper['type'] = amp_optim_wrapper_type()
    if wrapper['type'] != 'AmpOptimWrapper':
        wrapper.pop('loss_scale', None)  # bf16 needs no loss scaling
