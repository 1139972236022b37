# Copyright (c) OpenMMLab. All rights reserved.
"""Iteration schedules of DuPL as pure functions of the step (spec 7, 9.1).

Both functions depend on the step number alone, never on a previous value,
so a resumed run reproduces an uninterrupted one exactly. The hooks and the
LR scheduler in ``mmseg_dupl.engine`` only call them.
"""
import math
from typing import Union

from torch import Tensor


def cosine_descent(start: Union[float, Tensor], target: Union[float, Tensor],
                   step: int, total: int) -> Union[float, Tensor]:
    """Cosine move from ``start`` to ``target`` over ``total`` steps.

    The official ``train_helper.cosine_descent`` (spec 7)::

        step < 0      -> start
        step >= total -> target
        otherwise     -> start + (target - start)
                                 * (1 - cos(pi * step / (total - 1))) / 2

    The divisor ``total - 1`` means the last step inside the window,
    ``total - 1``, already reaches ``target``.

    Args:
        start (float | Tensor): Value before and at the first step. A tensor
            of shape (C,) gives one value per class.
        target (float | Tensor): Value at and after step ``total - 1``;
            float or a tensor broadcastable against ``start`` (e.g. (C,)).
        step (int): Steps since the schedule began (may be negative).
        total (int): Length of the schedule in steps, at least 2.

    Returns:
        float | Tensor: A float when both ends are floats, otherwise a tensor
        of the broadcast shape of ``start`` and ``target`` (e.g. (C,)).

    Example:
        >>> round(cosine_descent(0.70, 0.55, 11000 - 2000, 18000), 6)
        0.624993
    """
    if total < 2:
        raise ValueError(
            f'cosine_descent: total must be at least 2, got {total}')
    if step < 0:
        return _like_result(start, target, start)
    if step >= total:
        return _like_result(start, target, target)
    ratio = (1.0 - math.cos(math.pi * step / (total - 1))) / 2.0
    return start + (target - start) * ratio


def _like_result(start: Union[float, Tensor], target: Union[float, Tensor],
                 value: Union[float, Tensor]) -> Union[float, Tensor]:
    """Give the clamped branches the same type and shape as the cosine one.

    Without this, ``step < 0`` with a float ``start`` and a per-class
    ``target`` would return a float while later steps return (C,) tensors.
    """
    if not isinstance(start, Tensor) and not isinstance(target, Tensor):
        return value
    # value + 0 * (start + target) broadcasts to the common shape and dtype
    # while keeping the exact value of ``value``.
    zero = (start - start) + (target - target)
    return value + zero


def poly_warmup_factor(step: int,
                       warmup_iters: int = 1500,
                       max_iters: int = 20000,
                       warmup_ratio: float = 1e-6,
                       power: float = 0.9) -> float:
    """LR multiplier of the official ``PolyWarmupAdamW`` at ``step``.

    Spec 9.1, with ``step`` the optimizer's ``global_step`` before it is
    incremented (0 for the first update)::

        step < warmup_iters:  1 - (1 - step / warmup_iters) * (1 - ratio)
        otherwise:            (1 - step / max_iters) ** power

    The poly part uses the absolute step, not the step after warm-up, so the
    multiplier drops from ~0.99933 at step 1499 to ~0.93214 at step 1500.
    The official optimizer stops updating the lr once ``step >= max_iters``;
    this function mirrors that by returning the factor of ``max_iters - 1``.

    Args:
        step (int): Optimizer step index, 0-based, non-negative.
        warmup_iters (int): Linear warm-up length; 0 disables warm-up.
            Defaults to 1500.
        max_iters (int): Total number of iterations. Defaults to 20000.
        warmup_ratio (float): Multiplier at step 0 (the official
            ``warmup_lr=1e-6`` is a ratio). Defaults to 1e-6.
        power (float): Exponent of the poly decay. Defaults to 0.9.

    Returns:
        float: The multiplier applied to each group's initial lr.

    Example:
        >>> f'{6e-5 * poly_warmup_factor(7999):.3e}'
        '3.789e-05'
    """
    if step < 0:
        raise ValueError(f'poly_warmup_factor: step must be >= 0, got {step}')
    if max_iters < 1 or not 0 <= warmup_iters <= max_iters:
        raise ValueError('poly_warmup_factor: need 0 <= warmup_iters <= '
                         f'max_iters, got warmup_iters={warmup_iters}, '
                         f'max_iters={max_iters}')
    if step < warmup_iters:
        return 1.0 - (1.0 - step / warmup_iters) * (1.0 - warmup_ratio)
    step = min(step, max_iters - 1)
    return (1.0 - step / max_iters)**power
