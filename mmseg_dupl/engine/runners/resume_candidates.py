# Copyright (c) OpenMMLab. All rights reserved.
"""Pick the checkpoint ``--resume`` continues from: the newest that loads."""
import logging
import math
import os
import os.path as osp
import re
from typing import List, Optional, Tuple

import torch

#: Checkpoint names mmengine's CheckpointHook writes by default.
_CHECKPOINT_NAME = re.compile(r'^(?:iter|epoch)_(\d+)\.pth$')
POINTER_NAME = 'last_checkpoint'


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
    into memory.
    """
    try:
        checkpoint = torch.load(path, map_location='cpu', mmap=True)
    except Exception as e:  # torch raises several types for bad files
        return f'{type(e).__name__}: {e}'.strip()
    if not isinstance(checkpoint, dict) or 'meta' not in checkpoint:
        return 'not a checkpoint written by the Runner (no "meta")'
    return None


def choose_resume_checkpoint(work_dir: str,
                             logger: logging.Logger) -> Optional[str]:
    """The newest checkpoint of ``work_dir`` that loads.

    Candidates are the pointer's target and every ``iter_N.pth`` /
    ``epoch_N.pth`` in ``work_dir`` and in the target's folder, tried from
    the highest N down. A checkpoint newer than the pointer's target is a
    complete one (``DurableCheckpointHook`` renames a checkpoint into
    place only once it is on disk) whose pointer update was interrupted.

    Args:
        work_dir (str): The run's folder.
        logger (logging.Logger): Where the choice and the skipped files
            are logged.

    Returns:
        str | None: The checkpoint; None when there is none at all.

    Raises:
        RuntimeError: checkpoints exist but none loads (each reason is
            listed), so that a damaged run is not silently restarted from
            scratch.
    """
    target, pointer_note = read_pointer(work_dir)
    folders = [work_dir] + ([osp.dirname(target)] if target else [])
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


def _step_of(path: str) -> float:
    """N of ``iter_N.pth`` / ``epoch_N.pth``; +inf for another name (only
    the pointer's target can have one: it is tried first)."""
    match = _CHECKPOINT_NAME.match(osp.basename(path))
    return int(match.group(1)) if match else math.inf
