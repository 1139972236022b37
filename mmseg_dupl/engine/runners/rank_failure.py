# Copyright (c) OpenMMLab. All rights reserved.
"""Name the rank that stopped answering when a collective fails.

With ``env_cfg.dist_cfg.timeout`` reaching ``init_process_group``, a rank
that freezes (``SIGSTOP``, a hung driver) or dies makes the others' next
collective fail: gloo raises ``Timed out waiting 5000ms for recv
operation`` (or ``Connection closed by peer``), which names no rank. Each
rank that sees such a failure reports it in the job's rendezvous store;
the ranks that have not reported within a short wait are the ones that
stopped.
"""
import datetime
import re
import time
from typing import List, Optional

import torch.distributed as dist

_KEY = 'mmseg_dupl/collective_failure/'
# What gloo / NCCL / the store say when a peer stops answering.
_COLLECTIVE_FAILURE = re.compile(
    r'timed out|timeout|connection closed|connection reset|broken pipe|'
    r'connection refused|peer', re.IGNORECASE)


class RankFailureError(RuntimeError):
    """A collective failed because another rank stopped answering."""


def is_collective_failure(exc: BaseException) -> bool:
    """Whether ``exc`` is a collective that failed on a silent peer."""
    return isinstance(exc, RuntimeError) and not isinstance(
        exc, RankFailureError) and bool(
            _COLLECTIVE_FAILURE.search(str(exc)))


def report_wait_seconds(timeout: Optional[float]) -> float:
    """How long to wait for the other ranks' reports: the live ranks time
    out within about one iteration of each other."""
    if not timeout:
        return 10.
    return float(min(10., max(2., timeout / 2)))


def silent_ranks(iteration: int, wait_s: float) -> Optional[List[int]]:
    """Report this rank's failure and return the ranks that did not.

    Args:
        iteration (int): This rank's iteration, for the record.
        wait_s (float): How long to wait for the others' reports.

    Returns:
        list[int] | None: Ranks without a report after ``wait_s``; None
        when the store does not answer (it runs in the launcher or in
        rank 0, which may be the one that stopped).
    """
    rank, world = dist.get_rank(), dist.get_world_size()
    try:
        store = dist.distributed_c10d._get_default_store()
        store.set_timeout(datetime.timedelta(seconds=max(wait_s, 1.)))
        store.set(f'{_KEY}{rank}', str(iteration))
        waiting = set(range(world)) - {rank}
        deadline = time.monotonic() + wait_s
        while waiting and time.monotonic() < deadline:
            waiting = {r for r in waiting if not store.check([f'{_KEY}{r}'])}
            time.sleep(0.2)
    except Exception:  # the store itself is gone or frozen
        return None
    return sorted(waiting)


def describe(exc: BaseException, iteration: int,
             timeout: Optional[float]) -> str:
    """The message of :class:`RankFailureError` for ``exc``.

    Args:
        exc (BaseException): The collective's error.
        iteration (int): This rank's iteration.
        timeout (float | None): ``env_cfg.dist_cfg.timeout`` in seconds.

    Returns:
        str: Which rank(s) stopped answering, as far as can be told.
    """
    rank = dist.get_rank()
    wait_s = report_wait_seconds(timeout)
    silent = silent_ranks(iteration, wait_s)
    limit = f'dist_cfg.timeout={timeout:g} s' if timeout else 'its timeout'
    head = (f'rank {rank}: a collective failed at iteration {iteration} '
            f'({limit}): {str(exc).strip().splitlines()[0][:200]}')
    if silent is None:
        return (f'{head}. The rendezvous store does not answer either: '
                'the process hosting it (rank 0 or the launcher) stopped.')
    if not silent:
        return (f'{head}. Every rank reported the failure: no rank is '
                'frozen (a network failure, or a rank crashed first: see '
                'the launcher\'s "first observed failure").')
    names = ', '.join(str(r) for r in silent)
    plural = 's' if len(silent) > 1 else ''
    return (f'{head}. Rank{plural} {names} stopped answering (frozen, '
            f'killed or stuck): no report from {"them" if plural else "it"} '
            f'within {wait_s:g} s while the other ranks reported this '
            'failure.')
