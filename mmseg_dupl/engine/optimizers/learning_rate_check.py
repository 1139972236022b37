# Copyright (c) OpenMMLab. All rights reserved.
"""Refuse an optimizer whose parameter groups have a negative learning rate.

torch's optimizers check only their default ``lr`` (``AdamW(lr=-1)``
raises) but not the ``lr`` of each parameter group, and mmengine's
``DefaultOptimWrapperConstructor`` gives a group ``optimizer.lr x
lr_mult`` of its ``paramwise_cfg.custom_keys`` entry. So
``custom_keys=dict(decode_head=dict(lr_mult=-10))`` trains, without a
word, by gradient *ascent* on the decoder. :func:`check_learning_rates`
raises instead, naming the ``custom_keys`` entry that set the value.
"""
from collections import defaultdict
from typing import Dict, List, Mapping, Optional

from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapper, OptimWrapperDict
from torch import nn

_MAX_LISTED = 5  # parameter names listed per offending setting


def custom_key_of(param_name: str,
                  custom_keys: Mapping[str, dict]) -> Optional[str]:
    """The ``custom_keys`` entry mmengine applies to a parameter.

    mmengine 0.10.7 (``DefaultOptimWrapperConstructor.add_params``) tries
    the keys longest first (ties alphabetically) and takes the first that
    is a substring of ``'<module prefix>.<param name>'``; a top-level
    parameter has an empty prefix, hence the leading dot.

    Args:
        param_name (str): Dotted name in ``model.named_parameters()``.
        custom_keys (Mapping[str, dict]): ``paramwise_cfg.custom_keys``.

    Returns:
        str | None: The matching key, None when no key matches.
    """
    prefix, _, name = param_name.rpartition('.')
    matched = f'{prefix}.{name}'
    for key in sorted(sorted(custom_keys), key=len, reverse=True):
        if key in matched:
            return key
    return None


def _named_optimizers(optim_wrapper) -> Dict[str, object]:
    """``{config path: torch optimizer}`` of a wrapper or wrapper dict."""
    if isinstance(optim_wrapper, OptimWrapperDict):
        return {f'optim_wrapper.{name}': wrapper.optimizer
                for name, wrapper in optim_wrapper.items()}
    if isinstance(optim_wrapper, OptimWrapper):
        return {'optim_wrapper': optim_wrapper.optimizer}
    return {}


def _source_of(names: List[str], where: str,
               custom_keys: Mapping[str, dict]) -> str:
    """The setting that gave a group its rate: the ``custom_keys`` entry
    of its parameters, else the base rate (or another multiplier)."""
    keys = sorted({k for k in (custom_key_of(n, custom_keys) for n in names)
                   if k is not None})
    if keys:
        return ', '.join(f'{where}.paramwise_cfg.custom_keys.{k}='
                         f'{dict(custom_keys[k])}' for k in keys)
    return f'{where}.optimizer.lr (or another paramwise_cfg multiplier)'


def _listing(names: List[str]) -> str:
    shown = ', '.join(names[:_MAX_LISTED])
    more = ', ...' if len(names) > _MAX_LISTED else ''
    return f'{len(names)} parameters ({shown}{more})'


def check_learning_rates(optim_wrapper,
                         model: nn.Module,
                         paramwise_cfg: Optional[Mapping] = None) -> None:
    """Raise if any parameter group has a negative learning rate.

    Args:
        optim_wrapper (OptimWrapper | OptimWrapperDict): The built wrapper
            (anything else is not checked).
        model (nn.Module): The model it optimizes (wrappers are unwrapped),
            to name the parameters.
        paramwise_cfg (Mapping, optional): The config's
            ``optim_wrapper.paramwise_cfg``, to name the ``custom_keys``
            entry that set a group's rate. Defaults to None.

    Raises:
        ValueError: one line per setting that gave a negative rate: the
            ``custom_keys`` entry (or ``optimizer.lr``), the rate and the
            parameters.
    """
    while is_model_wrapper(model):
        model = model.module
    param_names = {id(p): n for n, p in model.named_parameters()}
    custom_keys = dict((paramwise_cfg or {}).get('custom_keys') or {})
    negative = defaultdict(list)  # (setting, lr) -> parameter names
    for where, optimizer in _named_optimizers(optim_wrapper).items():
        for group in optimizer.param_groups:
            if group.get('lr', 0.) >= 0:
                continue
            names = [param_names.get(id(p), '?') for p in group['params']]
            source = _source_of(names, where, custom_keys)
            negative[(source, group['lr'])] += names
    if negative:
        raise ValueError('\n'.join(
            f'{source} gives a negative learning rate ({lr:g}) to '
            f'{_listing(names)}: they would train by gradient ascent. Use '
            'a positive lr_mult (0 freezes them).'
            for (source, lr), names in negative.items()))
