# Copyright (c) OpenMMLab. All rights reserved.
"""Find the module or attribute a hook drives by its dotted path in the
model (``'decode_head.loss_decode'``), with errors that name the path."""
from typing import Any, Tuple

from torch import nn


def resolve_parent(model: nn.Module, path: str, hook: str) -> Tuple[Any, str]:
    """The object holding the last name of ``path``, and that name.

    ``path`` is relative to the (unwrapped) model; list entries are
    reached by index (``'decode_head.loss_decode.0'`` for mmseg's list of
    decode losses).

    Args:
        model (nn.Module): The unwrapped model.
        path (str): Dotted path, e.g. ``'decode_head.sampler.thresh'``.
        hook (str): The hook's name, for the error.

    Returns:
        tuple: ``(parent, name)`` with ``getattr(parent, name)`` existing.

    Raises:
        AttributeError: A step of ``path`` does not exist.
    """
    parts = path.split('.')
    obj = model
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        if part.isdigit() and isinstance(obj, (list, tuple, nn.ModuleList)):
            if last:
                break
            obj = obj[int(part)]
            continue
        if not hasattr(obj, part):
            reached = '.'.join(parts[:depth]) or 'the model'
            raise AttributeError(
                f'{hook}: target {path!r}: {reached} '
                f'({type(obj).__name__}) has no attribute {part!r}')
        if last:
            break
        obj = getattr(obj, part)
    return obj, parts[-1]


def resolve_module(model: nn.Module, path: str, hook: str) -> Any:
    """The object at ``path`` (see :func:`resolve_parent`)."""
    parent, name = resolve_parent(model, path, hook)
    if name.isdigit() and isinstance(parent, (list, tuple, nn.ModuleList)):
        return parent[int(name)]
    return getattr(parent, name)
