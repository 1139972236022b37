# Copyright (c) OpenMMLab. All rights reserved.
"""Crash-safe file replacement: write aside, flush, fsync, rename.

A reader of ``path`` sees either the old file or the complete new one,
after a crash at any point: the data reach the disk (``fsync``) before the
rename makes them visible under ``path``, and the directory is synced after
the rename so the new name itself survives a power loss (POSIX ``rename``
is atomic within a file system).

A write that fails (a full disk, a quota) deletes its temporary file,
which would otherwise keep the disk full, and raises an ``OSError`` that
names the file and the free space left (:func:`removed_on_failure`).
"""
import os
import os.path as osp
import shutil
from contextlib import contextmanager
from typing import Iterator

#: Suffix of a file written aside before its rename.
TMP_SUFFIX = '.tmp'


def tmp_path_for(path: str) -> str:
    """Where ``path`` is written before its rename: ``<path>.<pid>.tmp``,
    so that two processes never write the same temporary file.

    Args:
        path (str): The final name (a bare file name gives a bare name).

    Returns:
        str: The temporary name, in the same folder.
    """
    return f'{path}.{os.getpid()}{TMP_SUFFIX}'


def fsync_path(path: str) -> None:
    """Flush a file's or a directory's data and metadata to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def free_space(folder: str) -> str:
    """Free space of the file system holding ``folder``, e.g. '15.5 MB'."""
    try:
        return f'{shutil.disk_usage(folder).free / 1e6:.1f} MB'
    except OSError as e:
        return f'unknown ({e.strerror})'


@contextmanager
def removed_on_failure(tmp_path: str, path: str) -> Iterator[None]:
    """Delete ``tmp_path`` if the block writing ``path`` through it fails.

    An ``OSError`` (``ENOSPC``, ``EDQUOT``, ``EIO``...) is raised again
    with the same errno and a message naming ``path``, the deleted
    temporary file and the free space of its folder; torch's and the OS's
    own message (``No space left on device``) names neither. Other
    exceptions pass unchanged and leave the file, as a kill would (the
    resume ignores ``.tmp`` files).

    Args:
        tmp_path (str): The temporary file the block writes.
        path (str): The file it stands for (named in the error).

    Raises:
        OSError: the block's ``OSError``, described as above.
    """
    try:
        yield
    except OSError as e:
        removed = _remove(tmp_path)
        folder = osp.dirname(osp.abspath(tmp_path))
        raise OSError(
            e.errno, f'could not write {path}: {e.strerror or e}; the '
            f'partial {tmp_path} was {removed}; {free_space(folder)} free '
            f'in {folder}') from e


def _remove(path: str) -> str:
    """Delete ``path``; say what happened (for the error message)."""
    try:
        os.remove(path)
    except FileNotFoundError:
        return 'absent'
    except OSError as e:
        return f'NOT deleted ({e.strerror})'
    return 'deleted'


def commit_file(tmp_path: str, path: str) -> None:
    """Make the complete file ``tmp_path`` durable, then rename it to
    ``path`` and make the rename durable.

    Args:
        tmp_path (str): A fully written file in the folder of ``path``.
        path (str): The final name; an existing file is replaced.
    """
    fsync_path(tmp_path)
    os.replace(tmp_path, path)
    fsync_path(osp.dirname(osp.abspath(path)))


def write_text_durably(path: str, text: str) -> None:
    """Replace ``path`` with ``text`` so that it is never seen partial.

    Args:
        path (str): File to write.
        text (str): Its new content.
    """
    tmp_path = tmp_path_for(path)
    with removed_on_failure(tmp_path, path):
        with open(tmp_path, 'w') as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    fsync_path(osp.dirname(osp.abspath(path)))
