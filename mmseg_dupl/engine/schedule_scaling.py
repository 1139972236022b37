# Copyright (c) OpenMMLab. All rights reserved.
"""Scale a whole iteration schedule to another number of iterations.

``scale_schedule=True`` in a config (e.g. ``tools/train.py CONFIG
--cfg-options train_cfg.max_iters=40 scale_schedule=True``) makes the
runner (``CPULaunchRunner.from_cfg``) stretch or shrink every iteration
count of the schedule by ``train_cfg.max_iters / L``, where ``L`` is the
length the config's schedule was written for (its LR scheduler's
``max_iters`` / last ``end``): DuPL's phases, the LR warm-up and decay, the
GMM filter's start (GMMNoiseFilterHook), the validation, checkpoint and hook
intervals. Without it, only the loop length changes: phases and the poly
decay stay at the written length.
"""
import logging
from typing import Any, List, Optional

from mmengine.logging import print_log

#: iteration keys of a param scheduler that scale
SCHEDULER_KEYS = ('max_iters', 'warmup_iters', 'begin', 'end')
#: iteration keys of a custom hook that scale (GMMNoiseFilterHook's
#: start_iter, CosineThresholdHook's begin_iter / end_iter; not its start /
#: end, which are thresholds)
HOOK_KEYS = ('interval', 'start_iter', 'begin_iter', 'end_iter')


def schedule_length(cfg) -> int:
    """The number of iterations the config's schedule was written for: the
    largest ``max_iters`` or ``end`` of its iteration-based LR schedulers,
    else ``model.train_cfg.phases.end``.

    Raises:
        ValueError: If neither gives a length.
    """
    ends = []
    for scheduler in _schedulers(cfg):
        if scheduler.get('by_epoch', True) and 'max_iters' not in scheduler:
            continue  # epoch-based: no iteration count
        for key in ('max_iters', 'end'):
            value = scheduler.get(key)
            if isinstance(value, int) and value < 2**31:
                ends.append(value)
    if ends:
        return max(ends)
    phases = _phases(cfg)
    if isinstance(phases.get('end'), int):
        return phases['end']
    raise ValueError(
        'scale_schedule: no schedule length found (param_scheduler '
        'max_iters / end, or model.train_cfg.phases.end)')


def scale_schedule(cfg, iters: int, length: Optional[int] = None) -> List[str]:
    """Scale every iteration count of ``cfg`` from ``length`` (default:
    :func:`schedule_length`) to ``iters`` training iterations, in place.

    Counts equal to ``length`` become ``iters`` exactly; the others are
    multiplied by ``iters / length`` and floored (intervals and warm-up at
    least 1; phases at most ``iters``). Logs what changed and warns when a
    scheduler's end still differs from ``train_cfg.max_iters``.

    Args:
        cfg (Config): A config with an iteration-based ``train_cfg``.
        iters (int): The new ``train_cfg.max_iters``.
        length (int, optional): The length the schedule was written for.

    Returns:
        list[str]: ``'key: old -> new'`` for every changed value.
    """
    train_cfg = cfg.get('train_cfg') or {}
    if 'max_epochs' in train_cfg:
        raise ValueError('scale_schedule scales iteration-based schedules; '
                         'train_cfg has max_epochs')
    if not isinstance(iters, int) or iters < 1:
        raise ValueError(f'scale_schedule: train_cfg.max_iters must be a '
                         f'positive int, got {iters!r}')
    length = length or schedule_length(cfg)
    changes: List[str] = []
    scaler = _Scaler(iters, length, changes)
    if train_cfg.get('max_iters') != iters:
        changes.append(f"train_cfg.max_iters {train_cfg.get('max_iters')} "
                       f'-> {iters}')
        train_cfg['max_iters'] = iters
    scaler.set(train_cfg, 'val_interval', 'train_cfg.val_interval',
               at_least=1)
    for i, scheduler in enumerate(_schedulers(cfg)):
        for key in SCHEDULER_KEYS:
            # a nonzero count stays nonzero (a 1500-iteration warm-up of
            # 20k scaled to 10 ends at 1, and the decay begins there)
            old = scheduler.get(key)
            scaler.set(scheduler, key, f'param_scheduler.{i}.{key}',
                       at_least=1 if isinstance(old, int) and old > 0 else 0)
    phases = _phases(cfg)
    for name in list(phases):
        # a phase that exists keeps at least one iteration
        old = phases[name]
        scaler.set(phases, name, f'model.train_cfg.phases.{name}',
                   at_least=1 if isinstance(old, int) and old > 0 else 0,
                   at_most=iters)
    for name, hook in (cfg.get('default_hooks') or {}).items():
        if isinstance(hook, dict) and name in ('checkpoint', ):
            scaler.set(hook, 'interval', f'default_hooks.{name}.interval',
                       at_least=1)
    for i, hook in enumerate(cfg.get('custom_hooks') or []):
        for key in HOOK_KEYS:
            scaler.set(hook, key, f'custom_hooks.{i}.{key}', at_least=1)
    print_log(
        f'scale_schedule: {length} -> {iters} iterations: ' +
        ('; '.join(changes) or 'nothing to scale'), logger='current')
    warn_scheduler_mismatch(cfg)
    return changes


def apply_scale_schedule(cfg) -> None:
    """:func:`scale_schedule` to ``train_cfg.max_iters`` when the config
    sets ``scale_schedule=True`` (the runner calls this before building);
    then the key is set to False, so a dumped and reloaded config is not
    scaled twice."""
    if not cfg.get('scale_schedule', False):
        return
    scale_schedule(cfg, cfg.train_cfg.max_iters)
    cfg.scale_schedule = False


def warn_scheduler_mismatch(cfg) -> List[str]:
    """Warn for each iteration-based LR scheduler whose ``max_iters``, or
    for a last ``end``, that differs from ``train_cfg.max_iters``; return
    the messages."""
    max_iters = (cfg.get('train_cfg') or {}).get('max_iters')
    messages = []
    ends = []
    for i, scheduler in enumerate(_schedulers(cfg)):
        if isinstance(scheduler.get('max_iters'), int) and \
                scheduler['max_iters'] != max_iters:
            messages.append(f'param_scheduler.{i}.max_iters='
                            f'{scheduler["max_iters"]}')
        if not scheduler.get('by_epoch', True) and isinstance(
                scheduler.get('end'), int):
            ends.append((scheduler['end'], i))
    if ends and max(ends)[0] != max_iters:
        end, i = max(ends)
        messages.append(f'param_scheduler.{i}.end={end}')
    for message in messages:
        print_log(
            f'{message} differs from train_cfg.max_iters={max_iters}: the '
            'learning rate schedule does not end with training',
            logger='current',
            level=logging.WARNING)
    return messages


class _Scaler:
    """Scales integer config values, recording what changed."""

    def __init__(self, iters: int, length: int, changes: List[str]) -> None:
        self.iters, self.length, self.changes = iters, length, changes

    def value(self, old: int, at_least: int = 0,
              at_most: Optional[int] = None) -> int:
        new = self.iters if old == self.length else int(
            old * self.iters / self.length)
        new = max(new, at_least)
        return new if at_most is None else min(new, at_most)

    def set(self, parent: Any, key: str, name: str, at_least: int = 0,
            at_most: Optional[int] = None) -> None:
        old = parent.get(key) if isinstance(parent, dict) else None
        if not isinstance(old, int) or isinstance(old, bool) or \
                old >= 2**31:  # None, a list, or mmengine's INF end
            return
        new = self.value(old, at_least, at_most)
        if new != old:
            parent[key] = new
            self.changes.append(f'{name} {old} -> {new}')


def _schedulers(cfg) -> list:
    schedulers = cfg.get('param_scheduler') or []
    return [schedulers] if isinstance(schedulers, dict) else list(schedulers)


def _phases(cfg) -> dict:
    model = cfg.get('model') or {}
    return (model.get('train_cfg') or {}).get('phases') or {}
