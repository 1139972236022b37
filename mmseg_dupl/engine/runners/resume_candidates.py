# Copyright (c) OpenMMLab. All rights reserved.
"""Pick the checkpoint ``--resume`` continues from: the newest that loads."""
import logging
import math
import os
import os.path as osp
import re
from typing import Iterable, List, Optional, Sequence, Tuple

import torch
from mmengine.hooks import CheckpointHook

#: Checkpoint names mmengine's CheckpointHook writes by default.
_CHECKPOINT_NAME = re.compile(r'^(?:iter|epoch)_(\d+)\.pth$')
POINTER_NAME = 'last_checkpoint'
#: torch's refusal to memory-map a checkpoint in the older non-zip format.
_LEGACY_FORMAT = re.compile(r'mmap can only be used with files saved with')


def checkpoints_newest_first(folder: str) -> List[str]:
    """``iter_N.pth`` / ``epoch_N.pth`` files of ``folder``, highest N
    first (``.tmp`` leftovers of an interrupted save are not listed)."""
    if not osp.isdir(folder):
        return []
    found = []
    for name in os.listdir(folder):
        match = _CHECKPOINT_NAME.match(name)
        if match and osp.isfile(osp.join(folder, name)):
            found.append((int(match.group(1)), osp.join(folder, name)))
    return [path for _, path in sorted(found, reverse=True)]


def read_pointer(work_dir: str) -> Tuple[Optional[str], str]:
    """The path in ``work_dir/last_checkpoint`` and a description of it.

    Returns:
        tuple: ``(path or None, description)``; None when the pointer is
        absent, empty or names a missing file.
    """
    pointer = osp.join(work_dir, POINTER_NAME)
    if not osp.isfile(pointer):
        return None, f'{pointer} does not exist'
    with open(pointer) as f:
        target = f.read().strip()
    if not target:
        return None, f'{pointer} is empty'
    if not osp.isfile(target):
        return None, f'{pointer} names {target}, which does not exist'
    return target, f'{pointer} names {target}'


def probe_checkpoint(path: str) -> Optional[str]:
    """Why ``path`` cannot be loaded, or None if it can.

    ``torch.load`` with ``mmap=True`` unpickles the whole structure (a
    truncated or corrupt archive fails) without reading the tensor data
    into memory. A checkpoint in torch's older non-zip format (written
    with ``_use_new_zipfile_serialization=False``, or by torch < 1.6)
    cannot be memory-mapped, and torch says so (``mmap can only be used
    with files saved with ...``): it is read again without mmap, as
    mmengine's loader (``--resume``, ``tools/test.py``) reads it. Both
    reads keep torch's safe unpickler (``weights_only=True``).
    """
    try:
        checkpoint = _safe_load(path, mmap=True)
    except RuntimeError as e:
        if not _LEGACY_FORMAT.search(str(e)):
            return f'{type(e).__name__}: {e}'.strip()
        try:
            checkpoint = _safe_load(path, mmap=False)
        except Exception as e:  # torch raises several types
            return f'{type(e).__name__} (non-zip format): {e}'.strip()
    except Exception as e:  # torch raises several types for bad files
        return f'{type(e).__name__}: {e}'.strip()
    if not isinstance(checkpoint, dict) or 'meta' not in checkpoint:
        return 'not a checkpoint written by the Runner (no "meta")'
    return None


def _safe_load(path: str, mmap: bool):
    """``torch.load`` on the CPU with the safe unpickler."""
    return torch.load(path, map_location='cpu', mmap=mmap, weights_only=True)


def checkpoint_out_dirs(work_dir: str, hooks: Iterable) -> List[str]:
    """Folders a ``CheckpointHook`` with ``out_dir`` saves into.

    mmengine's hook saves into ``out_dir/<basename of work_dir>`` (set in
    its ``before_train``, after the resume) and writes the pointer in
    ``work_dir``; those folders are the run's own as much as ``work_dir``.

    Args:
        work_dir (str): The run's folder.
        hooks (Iterable): The runner's hooks.

    Returns:
        list[str]: One folder per checkpoint hook with a local ``out_dir``.
    """
    basename = osp.basename(work_dir.rstrip(osp.sep))
    return [osp.join(hook.out_dir, basename) for hook in hooks
            if isinstance(hook, CheckpointHook)
            and isinstance(getattr(hook, 'out_dir', None), str)
            and '://' not in hook.out_dir]


def choose_resume_checkpoint(work_dir: str,
                             logger: logging.Logger,
                             out_dirs: Sequence[str] = ()) -> Optional[str]:
    """The newest checkpoint of ``work_dir`` that loads.

    Candidates are every ``iter_N.pth`` / ``epoch_N.pth`` in ``work_dir``
    (and ``out_dirs``) and the pointer's target, tried from the highest N
    down. A checkpoint newer than the pointer's target is a complete one
    (``DurableCheckpointHook`` renames a checkpoint into place only once it
    is on disk) whose pointer update was interrupted.

    Only the run's own folders are scanned: a pointer naming a file
    elsewhere (a work dir copied with ``cp -r``, whose pointer still names
    the original run's checkpoint) is ignored with a warning, so that a
    copy never resumes from checkpoints it does not hold.

    Args:
        work_dir (str): The run's folder.
        logger (logging.Logger): Where the choice and the skipped files
            are logged.
        out_dirs (Sequence[str]): Other folders the run saves into
            (:func:`checkpoint_out_dirs`). Defaults to none.

    Returns:
        str | None: The checkpoint; None when there is none at all.

    Raises:
        RuntimeError: checkpoints exist but none loads (each reason is
            listed), so that a damaged run is not silently restarted from
            scratch.
    """
    folders = [work_dir, *out_dirs]
    target, pointer_note = read_pointer(work_dir)
    if target and not _inside(target, folders):
        logger.warning(
            f'--resume: {pointer_note}, which is outside the work dir '
            f'{work_dir}: ignored (a copied work dir resumes from its own '
            'checkpoints, not from those of the run it was copied from).')
        pointer_note += ' (outside the work dir: ignored)'
        target = None
    candidates = []
    for folder in folders:
        for path in checkpoints_newest_first(folder):
            if path not in candidates:
                candidates.append(path)
    if target and target not in candidates:
        candidates.insert(0, target)
    candidates.sort(key=_step_of, reverse=True)
    if not candidates:
        logger.info(f'--resume: no checkpoint in {work_dir} '
                    f'({pointer_note}); training from scratch.')
        return None
    skipped = []
    for path in candidates:
        reason = probe_checkpoint(path)
        if reason is None:
            why = 'the newest checkpoint that loads'
            if skipped:
                why += '; skipped ' + '; '.join(skipped)
            logger.info(f'--resume: resuming from {path} ({why}; '
                        f'{pointer_note}).')
            return path
        skipped.append(f'{path}: {reason}')
        logger.warning(f'--resume: cannot load {path} ({reason})')
    raise RuntimeError(f'--resume: no checkpoint in {work_dir} loads ('
                       f'{pointer_note}):\n  ' + '\n  '.join(skipped))


def _inside(path: str, folders: Sequence[str]) -> bool:
    """Whether ``path`` lies directly in one of ``folders`` (links and
    relative paths resolved)."""
    parent = osp.realpath(osp.dirname(osp.abspath(path)))
    return any(parent == osp.realpath(folder) for folder in folders)


def _step_of(path: str) -> float:
    """N of ``iter_N.pth`` / ``epoch_N.pth``; +inf for another name (only
    the pointer's target can have one: it is tried first)."""
    match = _CHECKPOINT_NAME.match(osp.basename(path))
    return int(match.group(1)) if match else math.inf
