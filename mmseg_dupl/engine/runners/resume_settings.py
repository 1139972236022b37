# Copyright (c) OpenMMLab. All rights reserved.
"""A resumed run follows its config, not the checkpoint's.

mmengine's ``Runner.resume`` loads the optimizer's param groups and each
scheduler's ``__dict__`` from the checkpoint, settings included: a run
resumed with a new ``max_iters`` or warm-up kept the old schedule (lr
4.8e-5 -> 6.0e-5, still warming up, where the config asked for 2.9e-5 ->
0), without a word. Here the checkpoint provides only the progress (step
counters, optimizer moments); every setting comes back from the config,
and each difference is reported.
"""
from collections import Counter, OrderedDict
from typing import Any, Dict, Iterable, List, Mapping, Sequence, Set

from mmengine.config import Config

#: Scheduler attributes that record progress; every other attribute of a
#: scheduler's state is a setting.
PROGRESS_KEYS = frozenset({'last_step', '_global_step', '_last_value'})

#: Config keys a resumed run is expected to change (not reported).
RUN_LOCAL_KEYS = ('work_dir', 'resume', 'load_from', 'launcher',
                  'experiment_name', 'visualizer.name')

_MAX_LISTED = 30
_UNSET = object()  # a key one of two configs lacks


class ResumeMismatchError(RuntimeError):
    """The checkpoint comes from a different model or optimizer."""


def _short(value: Any) -> str:
    if value is _UNSET:
        return '<unset>'
    if isinstance(value, float):
        return f'{value:.4g}'
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + '...'


class ConfigSettings:
    """The optimizer and scheduler settings built from the config, taken
    before ``Runner.resume`` overwrites them.

    Args:
        optimizer: What the schedulers drive: mmengine's ``OptimWrapper``
            (its ``param_groups`` add the group that tracks ``base_lr``)
            or a ``torch.optim.Optimizer``.
        schedulers (Sequence): The built parameter schedulers.
    """

    def __init__(self, optimizer, schedulers: Sequence) -> None:
        self.scheduled: Set[str] = {s.param_name for s in schedulers}
        self.groups = [{
            k: v
            for k, v in group.items()
            if k != 'params' and k not in self.scheduled
        } for group in optimizer.param_groups]
        self.schedulers = [{
            k: v
            for k, v in s.state_dict().items() if k not in PROGRESS_KEYS
        } for s in schedulers]

    def restore(self, optimizer, schedulers: Sequence) -> List[str]:
        """Put the config's settings back over the checkpoint's.

        The current value of each scheduled parameter (the lr at the
        resumed iteration) is recomputed by schedulers whose value is a
        function of the step (``closed_form = True``, e.g.
        ``PolyWithWarmupLR``); chained schedulers (mmengine's) continue
        from the checkpoint's value with the config's settings.

        Args:
            optimizer: The optimizer, after ``load_state_dict``.
            schedulers (Sequence): The schedulers, after
                ``load_state_dict``.

        Returns:
            list[str]: One line per setting that differed (checkpoint ->
            config), empty when the checkpoint's settings were the
            config's.
        """
        changes = self._restore_groups(optimizer)
        for i, (scheduler, settings) in enumerate(
                zip(schedulers, self.schedulers)):
            name = f'param_scheduler[{i}] ({type(scheduler).__name__})'
            for key, value in settings.items():
                old = getattr(scheduler, key, None)
                if _differs(old, value):
                    changes.append(f'{name} {key}: {_describe(old)} -> '
                                   f'{_describe(value)}')
                    setattr(scheduler, key, value)
        if changes:
            changes += _recompute_values(optimizer, schedulers)
        return changes

    def _restore_groups(self, optimizer) -> List[str]:
        counts: Dict[tuple, int] = Counter()
        for group, settings in zip(optimizer.param_groups, self.groups):
            for key, value in settings.items():
                old = group.get(key)
                if _differs(old, value):
                    counts[(key, _short(old), _short(value))] += 1
                    group[key] = value
        total = len(optimizer.param_groups)
        return [
            f'optimizer {key}: {old} -> {new} ({n} of {total} param groups)'
            for (key, old, new), n in counts.items()
        ]


def _differs(a: Any, b: Any) -> bool:
    try:
        return bool(a != b)
    except Exception:  # e.g. tensors: compare what they print
        return repr(a) != repr(b)


def _describe(value: Any) -> str:
    """A list of per-group values as its distinct values."""
    if isinstance(value, (list, tuple)) and len(value) > 3:
        distinct = list(OrderedDict.fromkeys(_short(v) for v in value))
        return '[' + ', '.join(distinct[:4]) + (
            ', ...' if len(distinct) > 4 else '') + f'] x{len(value)}'
    return _short(value)


def _recompute_values(optimizer, schedulers: Sequence) -> List[str]:
    """The scheduled values at the resumed step under the config's
    settings, for closed-form schedulers."""
    lines = []
    for scheduler in schedulers:
        if not getattr(scheduler, 'closed_form', False) or \
                scheduler._global_step < scheduler.begin:
            continue
        # the step counter stops at ``end``; count from the global step
        scheduler.last_step = scheduler._global_step - scheduler.begin
        name = scheduler.param_name
        old = optimizer.param_groups[0][name]
        values = scheduler._get_value()
        for group, value in zip(optimizer.param_groups, values):
            group[name] = value
        scheduler._last_value = list(values)
        lines.append(f'{name} of param group 0 at step '
                     f'{scheduler._global_step}: {_short(old)} -> '
                     f'{_short(values[0])}')
    return lines


def flatten(value: Any, prefix: str = '') -> Dict[str, Any]:
    """Nested dicts and lists as ``{'a.b.0.c': leaf}``."""
    if isinstance(value, Mapping):
        items: Iterable = value.items()
    elif isinstance(value, (list, tuple)):
        items = enumerate(value)
    else:
        return {prefix: value}
    flat: Dict[str, Any] = {}
    for key, sub in items:
        flat.update(flatten(sub, f'{prefix}.{key}' if prefix else str(key)))
    if not flat:  # an empty container is a value of its own
        flat[prefix] = value
    return flat


def config_differences(checkpoint_cfg_text: str, cfg: Config) -> List[str]:
    """Each config value that differs from the checkpoint's run.

    Args:
        checkpoint_cfg_text (str): ``checkpoint['meta']['cfg']`` (the
            ``pretty_text`` mmengine stores).
        cfg (Config): The resumed run's config.

    Returns:
        list[str]: ``key: checkpoint value -> config value`` lines, keys
        the resumed run is expected to change left out.

    Raises:
        Exception: The stored text does not parse as a config.
    """
    old = flatten(Config.fromstring(checkpoint_cfg_text, '.py').to_dict())
    new = flatten(cfg.to_dict())
    lines = []
    for key in sorted(set(old) | set(new)):
        if key.startswith(RUN_LOCAL_KEYS):
            continue
        a, b = old.get(key, _UNSET), new.get(key, _UNSET)
        if a is _UNSET or b is _UNSET or _differs(a, b):
            lines.append(f'{key}: {_short(a)} -> {_short(b)}')
    return lines


def listing(lines: List[str]) -> str:
    """Lines joined for a log message, at most 30 of them."""
    shown = lines[:_MAX_LISTED]
    more = len(lines) - len(shown)
    return '\n  ' + '\n  '.join(shown) + (f'\n  ... and {more} more'
                                          if more else '')


def check_resume_fits(checkpoint: dict, model_keys: Iterable[str],
                      optimizer, filename: str) -> None:
    """Refuse to resume a checkpoint of another model before loading it.

    ``load_from`` maps a single-student checkpoint onto both students of a
    two-student model (``DualStudentSegmentor``); ``--resume`` then died
    on torch's "loaded state dict has a different number of parameter
    groups" without saying why.

    Args:
        checkpoint (dict): The loaded checkpoint.
        model_keys (Iterable[str]): The model's state-dict keys.
        optimizer: The config-built optimizer (None: not checked).
        filename (str): The checkpoint, for the message.

    Raises:
        ResumeMismatchError: The checkpoint lacks a top-level part of the
            model (e.g. ``student2``), or its optimizer has another
            number of param groups.
    """
    state = checkpoint.get('state_dict', checkpoint)
    ours = _parts(model_keys)
    theirs = _parts(state)
    missing = sorted(ours - theirs)
    hint = (f' To start this config from these weights, train with '
            f'load_from={filename} (--cfg-options load_from=...) and '
            'without --resume.')
    if missing:
        kind = ('a single-student checkpoint (e.g. from the baseline '
                'config)' if any(p.startswith('student') for p in missing)
                and any(p.startswith('student') for p in theirs) else
                'a checkpoint of another model')
        raise ResumeMismatchError(
            f'--resume: {filename} is {kind}: it has {sorted(theirs)}, this '
            f'config builds {sorted(ours)} (no {", ".join(missing)}). '
            '--resume continues the same run, with its optimizer state.' +
            hint)
    groups = (checkpoint.get('optimizer') or {}).get('param_groups')
    if optimizer is None or groups is None:
        return
    if len(groups) != len(optimizer.param_groups):
        raise ResumeMismatchError(
            f'--resume: the optimizer state in {filename} has {len(groups)} '
            f'param groups, this config builds '
            f'{len(optimizer.param_groups)}: the checkpoint comes from '
            'another model or paramwise_cfg.' + hint)


def _parts(keys: Iterable[str]) -> Set[str]:
    """Top-level module names of state-dict keys (``module.`` stripped)."""
    parts = set()
    for key in keys:
        key = key[len('module.'):] if key.startswith('module.') else key
        parts.add(key.split('.')[0])
    return parts
