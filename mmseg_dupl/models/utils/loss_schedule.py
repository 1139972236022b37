# Copyright (c) OpenMMLab. All rights reserved.
"""Piecewise-constant loss weights driven by the iteration number."""
from typing import Dict, Optional, Sequence, Tuple, Union

from mmengine.logging import MessageHub

WeightSchedule = Union[float, Sequence[Tuple[int, float]]]


def piecewise_weight(schedule: WeightSchedule, n: int) -> float:
    """Weight of a loss term at iteration ``n``.

    Args:
        schedule (float | list[tuple[int, float]]): A constant, or
            ``[(first_iter, weight), ...]`` sorted by ``first_iter``: the
            weight of the last entry whose ``first_iter <= n`` applies, 0
            before the first entry. The official VOC bracket ``0 if n <= 2000
            else 0.2`` is ``[(2001, 0.2)]``.
        n (int): 0-based iteration (the optimizer's global step).

    Returns:
        float: The weight.
    """
    if isinstance(schedule, (int, float)):
        return float(schedule)
    weight = 0.
    for first_iter, value in schedule:
        if n >= first_iter:
            weight = float(value)
    return weight


def validate_weight_schedules(schedules: Dict[str, WeightSchedule],
                              key: str = 'train_cfg.loss_weights') -> None:
    """Raise a ``ValueError`` naming the config key for a malformed
    schedule (negative weight, unsorted or malformed entries)."""
    for name, schedule in schedules.items():
        if isinstance(schedule, (int, float)):
            entries = [(0, schedule)]
        else:
            try:
                entries = [(int(i), float(w)) for i, w in schedule]
            except (TypeError, ValueError) as err:
                raise ValueError(
                    f'{key}.{name} must be a number or a list of '
                    f'(first_iter, weight) pairs, got {schedule!r}') from err
        if any(w < 0 for _, w in entries):
            raise ValueError(f'{key}.{name} has a negative weight: '
                             f'{schedule!r}')
        starts = [i for i, _ in entries]
        if starts != sorted(starts):
            raise ValueError(f'{key}.{name} must be sorted by first_iter: '
                             f'{schedule!r}')


def current_iter(default: Optional[int] = None) -> int:
    """The runner's current iteration from the message hub.

    mmengine's ``RuntimeInfoHook`` writes ``iter`` before every training
    iteration (also right after a resume), so reading it keeps the model's
    phase logic exact without any state of its own.

    Args:
        default (int, optional): Returned when no runner has set ``iter``
            (e.g. a model used outside a Runner). Defaults to None, which
            means "after every phase" (a very large iteration).
    """
    value = MessageHub.get_current_instance().get_info('iter')
    if value is None:
        return default if default is not None else 2**62
    return int(value)
