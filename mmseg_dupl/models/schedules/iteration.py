# Copyright (c) OpenMMLab. All rights reserved.
"""The training iteration as the model sees it: mmengine's message hub."""
from mmengine.logging import MessageHub

#: The iteration of a model used where nothing has set one (no runner, no
#: ``set_iteration``): after every phase, so the model runs its final phase
#: (final thresholds, every term on). ``GMMFilteredLoss`` then filters.
FINAL_PHASE_ITER = 2**62


def current_iter() -> int:
    """The 0-based training iteration: the message hub's ``iter``.

    mmengine's ``RuntimeInfoHook`` writes ``iter`` before every training
    iteration (also right after a resume), so a model that reads it follows
    ``runner.iter`` exactly, without state of its own. Outside a runner,
    call :func:`set_iteration` first; if nothing set it, this returns
    :data:`FINAL_PHASE_ITER`.
    """
    value = MessageHub.get_current_instance().get_info('iter')
    return FINAL_PHASE_ITER if value is None else int(value)


def set_iteration(n: int) -> None:
    """Give a model used outside a runner the iteration ``n`` to follow
    (what ``RuntimeInfoHook`` does inside one)."""
    if n < 0:
        raise ValueError(f'set_iteration: n must be >= 0, got {n}')
    MessageHub.get_current_instance().update_info('iter', int(n))


def set_iteration_from_checkpoint(checkpoint: dict) -> None:
    """Follow the schedule where a training checkpoint left it: the last
    trained iteration, ``meta['iter'] - 1`` (``iter_N.pth`` was saved after
    N iterations). Tools that label with a loaded checkpoint (exporter,
    CAM drawings) call it so that an intermediate checkpoint gets the
    thresholds it was trained with; without ``meta.iter`` nothing changes.

    Args:
        checkpoint (dict): What ``mmengine.runner.load_checkpoint`` returns.
    """
    trained = (checkpoint.get('meta') or {}).get('iter')
    if trained:
        set_iteration(int(trained) - 1)


def max_iters() -> int:
    """``runner.max_iters`` as ``RuntimeInfoHook.before_train`` wrote it,
    or 0 outside a runner."""
    value = MessageHub.get_current_instance().get_info('max_iters')
    return int(value or 0)
