# Copyright (c) OpenMMLab. All rights reserved.
"""A schedule as long as the training: ``param_scheduler`` lengths follow
``train_cfg.max_iters`` unless set on purpose.

The configs write the length twice through one variable
(``train_cfg=dict(max_iters=max_iters)``, ``PolyWithWarmupLR(max_iters=
max_iters)``). ``--cfg-options train_cfg.max_iters=600`` changes only the
first: on the toy config the scheduler stayed at 300, and the learning
rate was 0 for the second half of the run.
"""
import math
import os.path as osp
from typing import Any, List, Optional, Sequence

from mmengine.config import Config

#: Scheduler arguments that state the schedule's length in iterations.
LENGTH_KEYS = ('max_iters', 'end')


def _as_list(schedulers: Any) -> List[dict]:
    if schedulers is None:
        return []
    if isinstance(schedulers, dict) and 'type' not in schedulers:
        return []  # one list per optimizer: not used by these configs
    return list(schedulers) if isinstance(schedulers, (list, tuple)) else [
        schedulers
    ]


def _file_config(cfg: Config) -> Optional[Config]:
    """The config as its file writes it (before ``--cfg-options``)."""
    filename = getattr(cfg, 'filename', None)
    if not filename or not osp.isfile(filename):
        return None
    try:
        return Config.fromfile(filename, import_custom_modules=False)
    except Exception:  # a config that only loads with its imports
        return None


def follow_train_max_iters(cfg: Config) -> List[str]:
    """Give each scheduler length that the config file ties to
    ``train_cfg.max_iters`` the run's ``train_cfg.max_iters``.

    A length is tied when the file gives it the value of the file's
    ``train_cfg.max_iters`` and the run did not change it (only
    ``train_cfg.max_iters`` was overridden). A length the file sets to
    another value, or that was overridden itself, is set on purpose and
    left alone (:func:`length_mismatches` warns about it at start), and
    so is one whose ``warmup_iters`` exceeds the new length (a 2-iteration
    smoke test of the 20k VOC schedule, 1500 warm-up iterations): scaling
    the warm-up is the config's business.

    Args:
        cfg (Config): The run's config, changed in place.

    Returns:
        list[str]: One line per length changed.
    """
    max_iters = (cfg.get('train_cfg') or {}).get('max_iters')
    schedulers = _as_list(cfg.get('param_scheduler'))
    if max_iters is None or not schedulers:
        return []
    file_cfg = _file_config(cfg)
    if file_cfg is None:
        return []
    file_max = (file_cfg.get('train_cfg') or {}).get('max_iters')
    file_schedulers = _as_list(file_cfg.get('param_scheduler'))
    if file_max is None or file_max == max_iters:
        return []
    notes = []
    for i, (run, file) in enumerate(zip(schedulers, file_schedulers)):
        if run.get('type') != file.get('type'):
            continue
        for key in LENGTH_KEYS:
            value = run.get(key)
            if value is None or value == max_iters:
                continue
            if value == file.get(key) == file_max:
                if run.get('warmup_iters', 0) > max_iters:
                    # shorter than its warm-up: following would make an
                    # invalid schedule; length_mismatches warns instead
                    continue
                run[key] = max_iters
                notes.append(
                    f'param_scheduler[{i}] ({run.get("type")}) {key}: '
                    f'{value} -> {max_iters}, following train_cfg.max_iters '
                    f'(equal in {osp.basename(cfg.filename)}; set '
                    f'param_scheduler.{i}.{key} to keep another value)')
    return notes


def length_mismatches(schedulers: Sequence, max_iters: int) -> List[str]:
    """Built schedulers whose length is not the training's.

    A ``max_iters`` (``PolyWithWarmupLR``) other than ``max_iters``, or an
    ``end`` beyond it (a decay cut short). An ``end`` before it is a
    warm-up or a stage and is not reported.

    Args:
        schedulers (Sequence): ``runner.param_schedulers`` (a list).
        max_iters (int): ``train_cfg.max_iters``.

    Returns:
        list[str]: One line per mismatch.
    """
    lines = []
    for i, scheduler in enumerate(schedulers):
        if getattr(scheduler, 'by_epoch', False):
            continue
        name = type(scheduler).__name__
        length = getattr(scheduler, 'max_iters', None)
        end = getattr(scheduler, 'end', None)
        if length is not None and length != max_iters:
            lines.append(f'param_scheduler[{i}] ({name}) max_iters={length} '
                         f'but train_cfg.max_iters={max_iters}')
        elif length is None and end is not None and math.isfinite(end) \
                and end > max_iters:
            lines.append(f'param_scheduler[{i}] ({name}) end={end} is beyond '
                         f'train_cfg.max_iters={max_iters}')
    return lines

