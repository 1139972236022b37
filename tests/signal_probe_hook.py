# Copyright (c) OpenMMLab. All rights reserved.
"""A test-only hook that sends a signal to its own process at a chosen
iteration (SIGTERM / SIGUSR1: preemption; SIGSTOP: a frozen rank).

Imported top-level as ``signal_probe_hook`` (``tests/`` on ``PYTHONPATH``
through ``custom_imports``, or on ``sys.path`` in-process), as
``ddp_probe_hook`` is.
"""
import os
import os.path as osp
import signal
from typing import Optional

from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmseg.registry import HOOKS


@HOOKS.register_module(force=True)
class SignalProbeHook(Hook):
    """Send ``signal_name`` to this process at iteration ``at_iter``.

    Args:
        at_iter (int): 0-based iteration, in whose ``before_train_iter``
            the signal is sent (the iteration then runs to its end, unless
            the signal stops the process).
        signal_name (str): e.g. ``'SIGTERM'``, ``'SIGUSR1'``, ``'SIGSTOP'``.
        rank (int): Only this rank signals itself. Defaults to 0.
        marker (str, optional): A file written (pid) just before the
            signal, so that a test knows when and whom it hit.
    """

    priority = 'HIGHEST'

    def __init__(self,
                 at_iter: int,
                 signal_name: str,
                 rank: int = 0,
                 marker: Optional[str] = None) -> None:
        self.at_iter = at_iter
        self.signal = getattr(signal, signal_name)
        self.rank = rank
        self.marker = marker

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        if runner.iter != self.at_iter or get_rank() != self.rank:
            return
        if self.marker:
            tmp = f'{self.marker}.part'
            with open(tmp, 'w') as f:
                f.write(str(os.getpid()))
            os.replace(tmp, self.marker)
            assert osp.isfile(self.marker)
        os.kill(os.getpid(), self.signal)
