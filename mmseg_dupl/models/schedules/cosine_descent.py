# Copyright (c) OpenMMLab. All rights reserved.
"""The cosine descent of DuPL's high CAM threshold (algorithm.md §7), a pure
function of the step, so a resumed run reproduces an uninterrupted one."""
import math
from typing import Union

from torch import Tensor


def cosine_descent(start: Union[float, Tensor], target: Union[float, Tensor],
                   step: int, total: int) -> Union[float, Tensor]:
    """Cosine move from ``start`` to ``target`` over ``total`` steps.

    The official ``train_helper.cosine_descent`` (algorithm.md §7)::

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
