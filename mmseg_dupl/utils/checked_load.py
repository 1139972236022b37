# Copyright (c) OpenMMLab. All rights reserved.
"""Load a state dict and say exactly what did not fit.

mmengine's ``load_state_dict(strict=False)`` (used by ``load_from``,
``tools/test.py`` and ``--resume``) only logs a warning when a checkpoint
leaves model tensors missing or of another shape, so a wrong checkpoint
still gives a plausible-looking score. :func:`load_state_dict_checked`
loads the same way (each module's ``_load_from_state_dict``, so key
remapping such as ``DualStudentSegmentor``'s single-student duplication
applies), collects the missing, mismatched and unexpected keys, logs how
many tensors each top-level part received, and raises
:class:`CheckpointMismatchError` on missing or mismatched model tensors
unless a partial load is explicitly allowed.
"""
import logging
import re
from collections import OrderedDict, defaultdict
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Tuple

from mmengine.logging import print_log
from mmengine.model import BaseTTAModel, is_model_wrapper
from torch import nn

_SIZE_MISMATCH = re.compile(r'size mismatch for (\S+):')
_MAX_LISTED = 20  # keys shown per category in a message


class CheckpointMismatchError(RuntimeError):
    """A checkpoint leaves model tensors missing or mismatched."""


@dataclass
class LoadReport:
    """What one load did.

    Attributes:
        missing (list[str]): Model keys the checkpoint does not provide.
        mismatched (list[str]): Keys whose shapes differ (not loaded).
        unexpected (list[str]): Checkpoint keys the model does not have.
        errors (list[str]): torch's messages (shape mismatches, ...).
        loaded (dict): Top-level part -> (loaded, total) tensor counts.
    """
    missing: List[str] = field(default_factory=list)
    mismatched: List[str] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)
    errors: List[str] = field(default_factory=list)
    loaded: Dict[str, Tuple[int, int]] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """Every model tensor was loaded with its own shape."""
        return not (self.missing or self.mismatched or self.errors)


def _listing(keys: List[str]) -> str:
    shown = ', '.join(keys[:_MAX_LISTED])
    more = ', ...' if len(keys) > _MAX_LISTED else ''
    return f'{shown}{more} ({len(keys)} in total)'


def _unwrap(module: nn.Module) -> nn.Module:
    while is_model_wrapper(module) or isinstance(module, BaseTTAModel):
        module = module.module
    return module


def load_into(module: nn.Module, state_dict: Mapping) -> LoadReport:
    """Load ``state_dict`` non-strictly and report what did not fit.

    The recursion of ``mmengine.runner.load_state_dict``: a parent's
    ``_load_from_state_dict`` may add keys that its children then read.

    Args:
        module (nn.Module): The model (wrappers are unwrapped).
        state_dict (Mapping): Keys without a ``module.`` prefix.

    Returns:
        LoadReport: The keys that did not fit and per-part counts.
    """
    module = _unwrap(module)
    metadata = getattr(state_dict, '_metadata', None)
    report = LoadReport()

    def load(mod: nn.Module, local: dict, prefix: str) -> None:
        meta = {} if metadata is None else metadata.get(prefix[:-1], {})
        mod._load_from_state_dict(local, prefix, meta, True, report.missing,
                                  report.unexpected, report.errors)
        for name, child in mod._modules.items():
            if child is not None:
                sub = prefix + name + '.'
                load(child, {k: v
                             for k, v in local.items() if k.startswith(sub)},
                     sub)

    load(module, OrderedDict(state_dict), '')
    report.missing = [k for k in report.missing
                      if 'num_batches_tracked' not in k]
    report.mismatched = [m.group(1) for m in map(_SIZE_MISMATCH.search,
                                                  report.errors) if m]
    report.loaded = _part_counts(module, report)
    return report


def _part_counts(module: nn.Module,
                 report: LoadReport) -> Dict[str, Tuple[int, int]]:
    """(loaded, total) tensors per top-level part of ``module``."""
    failed = set(report.missing) | set(report.mismatched)
    counts = defaultdict(lambda: [0, 0])
    for key in module.state_dict():
        if 'num_batches_tracked' in key:
            continue
        part = key.split('.')[0]
        counts[part][1] += 1
        counts[part][0] += key not in failed
    return {k: (v[0], v[1]) for k, v in counts.items()}


def check_load_report(report: LoadReport, source: str,
                      allow_partial: bool, option: str) -> None:
    """Log the per-part counts; raise on an incomplete load.

    Args:
        report (LoadReport): From :func:`load_into`.
        source (str): The checkpoint, for messages.
        allow_partial (bool): Only warn on an incomplete load.
        option (str): The switch that allows a partial load, named in the
            error (e.g. ``'allow_partial_load=True'``).

    Raises:
        CheckpointMismatchError: missing or mismatched model tensors and
            ``allow_partial`` is False.
    """
    parts = ', '.join(f'{part} {n}/{total}'
                      for part, (n, total) in report.loaded.items())
    print_log(f'Loaded {source}: tensors per part: {parts}', 'current')
    if report.unexpected:
        print_log(f'{source}: keys not used by the model: '
                  f'{_listing(report.unexpected)}', 'current',
                  logging.WARNING)
    if report.complete:
        return
    lines = [f'checkpoint {source} does not fit the model ({parts}):']
    if report.missing:
        lines.append(f'  missing: {_listing(report.missing)}')
    if report.mismatched:
        lines.append(f'  shape mismatch: {_listing(report.mismatched)}')
    other = [e for e in report.errors if not _SIZE_MISMATCH.search(e)]
    lines += [f'  {e}' for e in other]
    message = '\n'.join(lines)
    if allow_partial:
        print_log(message + f'\n  ({option}: continuing with a partial load)',
                  'current', logging.WARNING)
        return
    raise CheckpointMismatchError(
        message + f'\nSet {option} to accept a partial load.')

