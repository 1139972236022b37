# Copyright (c) OpenMMLab. All rights reserved.
"""fp32 islands inside mixed-precision (autocast) training.

Under ``torch.autocast`` (``tools/train.py --amp``: fp16 or bf16), the
backbone and heads should run in half precision, but some of DuPL's math
must not: the CAM min-max normalisation (values compared with 0.25 / 0.7
thresholds; bf16 keeps 8 bits of mantissa, so a [0, 1) map has a
resolution of 1/256 near 1), PAR (48-neighbour softmaxes and ten
propagation steps) and the GMM fit. ``fp32_island`` runs a function with
autocast disabled on the devices of its tensor arguments and its
half-precision floating inputs cast to float32, so its outputs are fp32
whatever the caller's precision. Casts are differentiable: gradients flow
back to the half-precision tensors that went in.
"""
import contextlib
import functools
from typing import Any, Callable, Iterator, Set

import torch
from torch import Tensor

#: Floating dtypes an island raises to float32 (float64 stays float64).
HALF_DTYPES = (torch.float16, torch.bfloat16)


def to_float32(obj: Any) -> Any:
    """Cast fp16/bf16 tensors to float32, recursing into lists, tuples and
    dicts; everything else (fp32/fp64, integer, bool tensors, modules,
    numbers) is returned as is.

    Args:
        obj (Any): A tensor or a container of tensors.

    Returns:
        Any: The same structure with half-precision tensors as float32.
    """
    if isinstance(obj, Tensor):
        return obj.float() if obj.dtype in HALF_DTYPES else obj
    if isinstance(obj, (list, tuple)):
        cast = [to_float32(o) for o in obj]
        # namedtuples take positional fields
        return type(obj)(*cast) if hasattr(obj, '_fields') else \
            type(obj)(cast)
    if isinstance(obj, dict):
        return type(obj)((k, to_float32(v)) for k, v in obj.items())
    return obj


def tensor_device_types(obj: Any) -> Set[str]:
    """Device types (``'cpu'``, ``'cuda'``, ...) of the tensors in ``obj``
    (lists, tuples and dicts are searched).

    Args:
        obj (Any): A tensor or a container of tensors.

    Returns:
        set[str]: The device types found (empty if there is no tensor).
    """
    if isinstance(obj, Tensor):
        return {obj.device.type}
    if isinstance(obj, (list, tuple)):
        items = obj
    elif isinstance(obj, dict):
        items = obj.values()
    else:
        return set()
    found: Set[str] = set()
    for item in items:
        found |= tensor_device_types(item)
    return found


@contextlib.contextmanager
def autocast_disabled(device_types: Set[str]) -> Iterator[None]:
    """Disable autocast on each of ``device_types`` where it is enabled
    (nothing is entered where it is not, so outside AMP this is free).

    Args:
        device_types (set[str]): Device types, e.g. ``{'cuda'}``.
    """
    with contextlib.ExitStack() as stack:
        for device_type in sorted(device_types):
            if torch.is_autocast_enabled(device_type):
                stack.enter_context(
                    torch.autocast(device_type, enabled=False))
        yield


def fp32_island(fn: Callable) -> Callable:
    """Decorator: run ``fn`` in float32 inside autocast regions.

    Half-precision floating tensors among the arguments (also inside
    lists, tuples and dicts) are cast to float32 and autocast is disabled
    for the devices of the tensor arguments (the CPU when there is none)
    while ``fn`` runs. Outside autocast and with fp32 inputs, the call is
    unchanged.

    Example:
        >>> @fp32_island
        ... def normalize(cam):
        ...     return cam / cam.amax()
        >>> with torch.autocast('cpu', dtype=torch.bfloat16):
        ...     out = normalize(torch.ones(2, dtype=torch.bfloat16))
        >>> out.dtype
        torch.float32

    Args:
        fn (Callable): The function to protect.

    Returns:
        Callable: The wrapped function (``__wrapped__`` is ``fn``).
    """

    @functools.wraps(fn)
    def island(*args, **kwargs):
        devices = tensor_device_types((args, kwargs)) or {'cpu'}
        with autocast_disabled(devices):
            return fn(*to_float32(args), **to_float32(kwargs))

    return island
