# Copyright (c) OpenMMLab. All rights reserved.
"""``CosineThresholdHook`` and ``GMMNoiseFilterHook`` are gone: the model's
``DuPLSchedule`` owns the phases. The names stay registered only to turn
an old config into an error that names the new keys."""
from mmengine.hooks import Hook
from mmseg.registry import HOOKS

REPLACEMENTS = {
    'CosineThresholdHook':
    'model.train_cfg.thresholds (high = start, high_target = end) and '
    'model.train_cfg.phases (descent = begin_iter, default phases.cam; '
    'end = end_iter)',
    'GMMNoiseFilterHook':
    'model.train_cfg.phases.gmm (= start_iter) and '
    'model.train_cfg.consistency_delay',
}


def _removed_hook(name: str) -> type:
    """A registered hook type whose construction raises, naming the keys
    that replaced it."""

    def __init__(self, *args, **kwargs) -> None:
        raise ValueError(
            f'custom_hooks: {name} was removed; the schedule now lives in '
            f'{REPLACEMENTS[name]}. Delete the hook from custom_hooks.')

    return type(name, (Hook, ), {'__init__': __init__, '__doc__': __doc__})


for _name in REPLACEMENTS:
    HOOKS.register_module(name=_name, module=_removed_hook(_name))
