# Copyright (c) OpenMMLab. All rights reserved.
"""Let ``torch.load(weights_only=True)`` read mmengine 0.10.7 checkpoints.

Since torch 2.6, ``torch.load`` defaults to ``weights_only=True``, and
mmengine 0.10.7 (``CheckpointLoader.load_from_local``) calls it without the
argument. A checkpoint written by ``Runner.save_checkpoint`` holds more than
tensors, so ``--resume``, ``load_from``, ``tools/test.py`` and
``mmengine.runner.load_checkpoint`` fail with ``UnpicklingError``.

Rather than switching the safety check off (``weights_only=False`` or
``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``), :func:`allow_mmengine_checkpoint_types`
allow-lists exactly the globals such a checkpoint references. Found with
``torch.serialization.get_unsafe_globals_in_checkpoint`` on checkpoints of a
real ``Runner`` (IterBasedTrainLoop, AdamW with ``lr_mult``, LR schedulers,
validation with a metric, ``CheckpointHook(save_best=...)``):

- ``mmengine.logging.history_buffer.HistoryBuffer``: the values of
  ``message_hub.log_scalars``;
- ``builtins.getattr``, restricted (see below): a ``HistoryBuffer`` state
  holds a ``statistics_methods`` dict, and pickle stores
  ``HistoryBuffer.min`` as ``getattr(HistoryBuffer, 'min')``;
- ``numpy.ndarray``, ``numpy.dtype``, ``numpy._core.multiarray._reconstruct``:
  the arrays inside each ``HistoryBuffer``;
- ``numpy._core.multiarray.scalar``: numpy scalars in
  ``message_hub.runtime_info`` (``eta``, ``best_score``, metric values);
- the numpy bool / int / uint / float dtype classes (``Float64DType`` ...):
  pickled dtype objects are rebuilt as instances of these;
- ``mmengine.config.config.ConfigDict``: ``dataset_meta`` (in ``meta`` and
  ``runtime_info``) when a config passes a nested dict as ``metainfo``.

``numpy.core.multiarray.*`` (checkpoints pickled under numpy 1.x) map to the
same functions. Everything else (optimizer and scheduler state, meta) is made
of containers and builtins that torch allows already.

``builtins.getattr`` is never allowed as such: the name is bound to
:func:`_history_buffer_getattr`, which only returns the four statistics
methods of ``HistoryBuffer`` and raises for anything else.
"""
import pickle
from typing import Any, Callable, List, Tuple, Union

import numpy as np
import torch
from mmengine.config import ConfigDict
from mmengine.logging import HistoryBuffer

try:  # numpy >= 2 (and 1.26, which ships the forward-compatible alias)
    from numpy._core import multiarray as _np_multiarray
except ImportError:  # pragma: no cover - older numpy 1.x
    from numpy.core import multiarray as _np_multiarray

SafeGlobal = Union[Callable, Tuple[Callable, str]]

# HistoryBuffer._set_default_statistics registers these class functions.
_HISTORY_BUFFER_STATISTICS = ('min', 'max', 'current', 'mean')

# numpy scalar types whose dtype objects may appear in message_hub state.
_NUMPY_SCALAR_TYPES = (np.bool_, np.int8, np.int16, np.int32, np.int64,
                       np.uint8, np.uint16, np.uint32, np.uint64, np.float16,
                       np.float32, np.float64)

_REGISTERED = False


def _history_buffer_getattr(obj: Any, name: str) -> Callable:
    """Stand-in for ``builtins.getattr`` while unpickling with weights_only.

    A ``HistoryBuffer`` pickles its ``statistics_methods`` dict, whose values
    are ``HistoryBuffer.min`` etc.; pickle stores a method of a class by its
    qualified name as ``getattr(HistoryBuffer, 'min')``. This function
    resolves only those lookups.

    Args:
        obj (Any): The object the checkpoint asks an attribute of.
        name (str): The attribute name.

    Returns:
        Callable: ``HistoryBuffer.<name>`` for one of the statistics methods.

    Raises:
        pickle.UnpicklingError: For any other object or attribute.
    """
    if obj is HistoryBuffer and name in _HISTORY_BUFFER_STATISTICS:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'weights_only load: getattr({obj!r}, {name!r}) is not allow-listed '
        'by mmseg_dupl.utils.safe_checkpoint (only HistoryBuffer statistics '
        f'methods {_HISTORY_BUFFER_STATISTICS} are).')


def mmengine_checkpoint_safe_globals() -> List[SafeGlobal]:
    """List the globals an mmengine 0.10.7 checkpoint needs.

    Returns:
        list: Entries for ``torch.serialization.add_safe_globals``, either a
        class / function or a ``(callable, 'module.qualname')`` pair.
    """
    dtype_classes = [type(np.dtype(t)) for t in _NUMPY_SCALAR_TYPES]
    return [
        HistoryBuffer,
        ConfigDict,
        (_history_buffer_getattr, 'builtins.getattr'),
        np.ndarray,
        np.dtype,
        *dtype_classes,
        (_np_multiarray._reconstruct, 'numpy._core.multiarray._reconstruct'),
        (_np_multiarray.scalar, 'numpy._core.multiarray.scalar'),
        (_np_multiarray._reconstruct, 'numpy.core.multiarray._reconstruct'),
        (_np_multiarray.scalar, 'numpy.core.multiarray.scalar'),
    ]


def allow_mmengine_checkpoint_types() -> None:
    """Allow-list mmengine checkpoint types for ``weights_only`` loading.

    Idempotent: torch keeps the allow-list as a set, and a module flag skips
    the work after the first call. ``torch.load``'s default stays
    ``weights_only=True``; only the listed globals become loadable.
    """
    global _REGISTERED
    if _REGISTERED:
        return
    torch.serialization.add_safe_globals(mmengine_checkpoint_safe_globals())
    _REGISTERED = True
