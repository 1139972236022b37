# Copyright (c) OpenMMLab. All rights reserved.
"""One owner per work dir: an exclusive ``flock`` on ``WORK_DIR/run.lock``.

Two runs started with the same ``--work-dir`` otherwise interleave their
checkpoints (``iter_4.pth`` from one run, ``iter_8.pth`` from the other,
the pointer naming either) and, started in the same second, share one
``<timestamp>/`` log folder. The lock is taken before the Runner writes
anything there; a second process is refused with the owner's pid.

The kernel releases an ``flock`` when the last descriptor of its open file
is closed, so the lock goes with the owner however it ends (``SIGKILL``
included). The lock file itself stays: deleting it would let a waiting
process lock an unlinked inode.
"""
import fcntl
import os
import os.path as osp
import socket
import sys
import time
from typing import Dict, List, Optional

#: Name of the lock file inside the work dir.
LOCK_NAME = 'run.lock'

# realpath of a held lock file -> [fd, holders in this process]
_HELD: Dict[str, List[int]] = {}


class WorkDirLockedError(RuntimeError):
    """Another process owns the work dir."""


def _drop_inherited_locks() -> None:
    """In a forked child (a DataLoader worker), close the inherited lock
    descriptors: the child does not own the work dir, and an open copy
    would keep the lock alive after its parent died."""
    for fd, _ in _HELD.values():
        try:
            os.close(fd)
        except OSError:
            pass
    _HELD.clear()


os.register_at_fork(after_in_child=_drop_inherited_locks)


def rank_before_init(launcher: str) -> int:
    """This process's global rank, read before the process group exists
    (the variables mmengine's ``init_dist`` reads for each launcher).

    Args:
        launcher (str): ``'none'``, ``'pytorch'``, ``'slurm'`` or ``'mpi'``.

    Returns:
        int: The rank; 0 without a launcher.
    """
    if launcher == 'none':
        return 0
    names = dict(
        pytorch='RANK', slurm='SLURM_PROCID', mpi='OMPI_COMM_WORLD_RANK')
    return int(os.environ.get(names.get(launcher, 'RANK'), 0))


class WorkDirLock:
    """An exclusive, process-wide lock on a work dir.

    Re-entrant within one process: runners built one after another in the
    same process (a run and its resumed continuation in a test, the demo's
    evaluation after training) share the owner's lock.

    Args:
        work_dir (str): The folder; created if missing.
    """

    def __init__(self, work_dir: str) -> None:
        self.work_dir = work_dir
        self.path = osp.join(osp.realpath(work_dir), LOCK_NAME)
        self._held = False

    def acquire(self) -> bool:
        """Take the lock, or raise naming the process that holds it.

        Returns:
            bool: True when held; False when the file system does not
            support ``flock`` (the caller warns and runs unlocked).

        Raises:
            WorkDirLockedError: Another process holds the lock.
        """
        if self._held:
            return True
        if self.path in _HELD:
            _HELD[self.path][1] += 1
            self._held = True
            return True
        os.makedirs(osp.dirname(self.path), exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = _read_owner(fd)
            os.close(fd)
            raise WorkDirLockedError(
                f'work dir {self.work_dir} is in use by another run ('
                f'{owner or "owner unknown: its lock file is empty"}; lock '
                f'{self.path}). Wait for it to end or choose another '
                '--work-dir.') from None
        except OSError:  # no flock on this file system (e.g. Lustre)
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, _owner_line().encode())
        _HELD[self.path] = [fd, 1]
        self._held = True
        return True

    def release(self) -> None:
        """Give this holder's share back; the last one unlocks."""
        if not self._held:
            return
        self._held = False
        entry = _HELD.get(self.path)
        if entry is None:  # dropped in a forked child
            return
        entry[1] -= 1
        if entry[1] == 0:
            del _HELD[self.path]
            os.close(entry[0])  # closing the last descriptor unlocks

    @property
    def held(self) -> bool:
        """Whether this holder has the lock."""
        return self._held


def _owner_line() -> str:
    command = ' '.join(sys.argv)[:300]
    return (f'pid {os.getpid()} on {socket.gethostname()}, started '
            f'{time.strftime("%Y-%m-%d %H:%M:%S")}: {command}\n')


def _read_owner(fd: int) -> Optional[str]:
    """The owner line of a lock file, or None when empty."""
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 4096).decode(errors='replace').strip()
    return text or None
