# Copyright (c) OpenMMLab. All rights reserved.
"""Format a config's text with yapf once per process, not at every read.

mmengine's ``Config.pretty_text`` runs yapf's ``FormatCode`` on every read,
and a Runner reads it when it logs the config, when it dumps the config to
the work dir and at every checkpoint save (the checkpoint's ``meta.cfg``).
yapf takes 0.2-0.8 s on a DuPL config, and about 4 s once a ``data_root`` is
longer than about 75 characters: its search for line splits explodes on a
nested line that cannot fit 79 columns (``benchmarks/bench_config_text.py``
measures both). The same input always formats to the same output, so a
cache keyed by the input changes no text anywhere.
"""
import functools
from typing import Any, Callable, Tuple

import mmengine.config.config as mmengine_config

_CACHED_FLAG = '_mmseg_dupl_cached'


def cached_format_code(format_code: Callable,
                       maxsize: int = 16) -> Callable:
    """Wrap yapf's ``FormatCode(text, style_config=..., **kwargs)`` in an
    LRU cache keyed by the text, the style and the keyword arguments.

    A call whose style or arguments are not hashable goes to
    ``format_code`` uncached; an exception is raised each time (never
    cached).

    Args:
        format_code (Callable): yapf's ``FormatCode``.
        maxsize (int): Texts kept (a few per Runner config).

    Returns:
        Callable: A drop-in replacement returning ``format_code``'s
        ``(text, changed)``.
    """

    @functools.lru_cache(maxsize=maxsize)
    def by_key(text: str, style: Tuple, kwargs: Tuple) -> Any:
        return format_code(
            text, style_config=None if style is None else dict(style),
            **dict(kwargs))

    @functools.wraps(format_code)
    def cached(text: str, style_config: Any = None, **kwargs) -> Any:
        try:
            style = None if style_config is None else tuple(
                sorted(style_config.items()))
            key = (text, style, tuple(sorted(kwargs.items())))
            hash(key)
        except (AttributeError, TypeError):  # a style file name, a list...
            return format_code(text, style_config=style_config, **kwargs)
        return by_key(*key)

    setattr(cached, _CACHED_FLAG, True)
    cached.cache_info = by_key.cache_info
    return cached


def cache_config_formatting() -> bool:
    """Make ``mmengine.config.Config.pretty_text`` format each distinct
    config text once per process (see the module docstring). Idempotent.

    Returns:
        bool: Whether mmengine's config module formats with a cached
        ``FormatCode`` now (False if its mmengine version has none).
    """
    format_code = getattr(mmengine_config, 'FormatCode', None)
    if format_code is None:
        return False
    if not getattr(format_code, _CACHED_FLAG, False):
        mmengine_config.FormatCode = cached_format_code(format_code)
    return True
