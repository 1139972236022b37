# Copyright (c) OpenMMLab. All rights reserved.
"""Crash-safe file replacement: write aside, flush, fsync, rename.

A reader of ``path`` sees either the old file or the complete new one,
after a crash at any point: the data reach the disk (``fsync``) before the
rename makes them visible under ``path``, and the directory is synced after
the rename so the new name itself survives a power loss (POSIX ``rename``
is atomic within a file system).
"""
import os
import os.path as osp

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
    with open(tmp_path, 'w') as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp_path, path)
    fsync_path(osp.dirname(osp.abspath(path)))
