# Copyright (c) OpenMMLab. All rights reserved.
"""Read a pickled ``.npy`` file without running code from it.

``np.load(path, allow_pickle=True)`` unpickles with the full
``pickle.Unpickler``: a crafted file can import and call anything (e.g.
``os.system``) the moment it is read. The official label file of PSA /
AFA / ToCo / DuPL (``cls_labels_onehot.npy``) is such a pickle: ``np.save``
of a dict mapping image names to multi-hot vectors.

:func:`load_pickled_npy` reads the ``.npy`` header with numpy and unpickles
the payload with :class:`RestrictedUnpickler`, which resolves only the
globals that pickled numpy arrays need:

- ``numpy._core.multiarray._reconstruct`` (``numpy.core.multiarray`` in
  files written under numpy 1.x) and ``numpy.ndarray``: an array is
  pickled as ``_reconstruct(ndarray, ...)`` plus its state;
- ``numpy.dtype``: the arrays' dtypes;
- ``_codecs.encode``, restricted to latin-1: how Python 3 pickles raw
  bytes at protocol 2 (array buffers of old files).

Containers, strings and numbers need no global. Anything else raises
:class:`pickle.UnpicklingError` before it is looked up, so no code of the
file runs.
"""
import codecs
import pickle
from typing import Any, Callable

import numpy as np

try:  # numpy >= 2 (and 1.26, which ships the forward-compatible alias)
    from numpy._core import multiarray as _np_multiarray
except ImportError:  # pragma: no cover - older numpy 1.x
    from numpy.core import multiarray as _np_multiarray


def _latin1_encode(text: str, encoding: str = 'latin1') -> bytes:
    """``_codecs.encode`` for the latin-1 bytes of protocol-2 pickles."""
    if codecs.lookup(encoding).name != 'iso8859-1':
        raise pickle.UnpicklingError(
            f'_codecs.encode with encoding {encoding!r} is not allowed '
            '(only latin-1, which pickle uses for bytes)')
    return codecs.encode(text, 'latin1')


#: (module, name) -> the object it resolves to. Nothing else resolves.
_ALLOWED_GLOBALS = {
    ('numpy._core.multiarray', '_reconstruct'): _np_multiarray._reconstruct,
    ('numpy.core.multiarray', '_reconstruct'): _np_multiarray._reconstruct,
    ('numpy', 'ndarray'): np.ndarray,
    ('numpy', 'dtype'): np.dtype,
    ('_codecs', 'encode'): _latin1_encode,
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that builds only containers, scalars and numpy arrays.

    Args:
        file: Binary file positioned at the pickle.
        source (str): Name of the file, for error messages.
    """

    def __init__(self, file, source: str) -> None:
        super().__init__(file, encoding='latin1')
        self.source = source

    def find_class(self, module: str, name: str) -> Callable:
        """Resolve an allow-listed global, refuse any other."""
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f'{self.source}: refusing to load the global '
                f'{module}.{name} from this pickled file (only numpy arrays '
                'and plain containers are allowed; the file may be crafted '
                'to run code)') from None


def load_pickled_npy(path: str) -> Any:
    """Load a ``.npy`` file, unpickling an object array safely.

    Args:
        path (str): The ``.npy`` file.

    Returns:
        Any: The array. For ``np.save(path, obj)`` of a non-array ``obj``
        this is a 0-d object array; ``.item()`` gives ``obj``.

    Raises:
        ValueError: not a ``.npy`` file (the message names ``path``).
        pickle.UnpicklingError: a global that is not allow-listed, or a
            malformed pickle (the message names ``path``).
    """
    with open(path, 'rb') as f:
        try:
            version = np.lib.format.read_magic(f)
            read_header = (np.lib.format.read_array_header_1_0
                           if version == (1, 0) else
                           np.lib.format.read_array_header_2_0)
            _, _, dtype = read_header(f)
        except ValueError as e:
            raise ValueError(f'{path} is not a .npy file: {e}') from e
        if not dtype.hasobject:
            f.seek(0)
            return np.load(f, allow_pickle=False)
        try:
            return RestrictedUnpickler(f, path).load()
        except pickle.UnpicklingError:
            raise
        except Exception as e:  # truncated or malformed pickle
            raise pickle.UnpicklingError(
                f'{path}: malformed pickled .npy payload: {e}') from e
