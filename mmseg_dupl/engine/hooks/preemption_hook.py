# Copyright (c) OpenMMLab. All rights reserved.
"""Save and stop at an iteration boundary on SIGTERM / SIGUSR1."""
import logging
import os
import signal
import sys
from typing import Optional, Sequence

import torch
from mmengine.dist import all_reduce, barrier, get_world_size
from mmengine.hooks import CheckpointHook, Hook
from mmseg.registry import HOOKS

#: Exit status of a preempted run: ``EX_TEMPFAIL`` (sysexits.h), "a
#: temporary failure; the user is invited to retry" (``--resume``).
PREEMPTED_EXIT_CODE = 75


class TrainingPreempted(SystemExit):
    """Training stopped on a signal after saving a checkpoint.

    A ``SystemExit``: ``tools/train.py`` ends with :data:`PREEMPTED_EXIT_CODE`
    and no traceback; a caller that runs training in-process can catch it.

    Attributes:
        signal_name (str): The signal, e.g. ``'SIGTERM'``.
        checkpoint (str | None): The checkpoint saved for the stop.
    """

    def __init__(self, code: int, signal_name: str,
                 checkpoint: Optional[str]) -> None:
        super().__init__(code)
        self.signal_name = signal_name
        self.checkpoint = checkpoint


@HOOKS.register_module()
class PreemptionHook(Hook):
    """On SIGTERM or SIGUSR1, finish the iteration, save, and exit.

    SLURM sends SIGTERM before it kills a preempted or cancelled job, and
    ``--signal=USR1@SECONDS`` sends SIGUSR1 before the time limit; torchrun
    forwards SIGTERM to its workers. Left to its default action the signal
    ends the process at once (exit 143), losing everything since the last
    checkpoint. Here it only sets a flag (a second one during the save is
    ignored too); after the iteration's own hooks ran
    (``priority='LOWEST'``, after the checkpoint hook) the run saves
    through the config's checkpoint hook (``DurableCheckpointHook``: the
    crash-safe sequence, ``last_checkpoint`` updated), logs one line, and
    raises :class:`TrainingPreempted` (exit status 75). ``--resume``
    continues from that checkpoint exactly as from a scheduled one.

    Under DDP the ranks agree on the stop with one all-reduce of the flag
    per iteration, so they all stop after the same iteration and save
    together (the checkpoint is written by rank 0, as every checkpoint),
    whichever rank got the signal. A barrier then holds every rank until
    rank 0 has committed the file, and all ranks leave at once with
    ``os._exit(75)`` (logs flushed first): a rank that ended earlier would
    make torchrun, or ``srun --kill-on-bad-exit``, kill the others,
    possibly in the middle of the save and with another exit status.

    The handlers must be installed before DataLoader workers are forked:
    SLURM signals every process of the job step, and a worker killed by
    SIGTERM makes the main process raise; a forked worker inherits the
    flag-setting handler and carries on. ``CheckedRunner.train``
    installs them (:meth:`catch_signals`) before it builds the train loop;
    with another Runner they are installed at ``before_run``. They are
    restored when training ends, so a signal after that acts as usual.

    ``CheckedRunner`` adds this hook to every config as
    ``default_hooks.preemption``; ``default_hooks=dict(preemption=None)``
    turns it off.

    Args:
        signals (Sequence[str]): Signals that stop training. Defaults to
            ``('SIGTERM', 'SIGUSR1')``.
        exit_code (int): Exit status after the save. Defaults to 75.
    """

    priority = 'LOWEST'

    def __init__(self,
                 signals: Sequence[str] = ('SIGTERM', 'SIGUSR1'),
                 exit_code: int = PREEMPTED_EXIT_CODE) -> None:
        self.signals = [getattr(signal, name) for name in signals]
        self.exit_code = exit_code
        self.received: Optional[int] = None
        self._previous: dict = {}

    # -- signal handling -------------------------------------------------

    def catch_signals(self) -> None:
        """Install the flag-setting handlers (main thread only)."""
        if self._previous:
            return
        try:
            for sig in self.signals:
                self._previous[sig] = signal.signal(sig, self._on_signal)
        except ValueError:  # not the main thread: signals cannot be caught
            self.release_signals()

    def release_signals(self) -> None:
        """Restore the handlers that were there before."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    def _on_signal(self, signum: int, frame) -> None:
        # Only a flag: the iteration in progress finishes first.
        if self.received is None:
            self.received = signum

    # -- hook events -------------------------------------------------------

    def before_run(self, runner) -> None:
        """Install the handlers if the runner did not already."""
        self.catch_signals()
        if not self._previous:
            runner.logger.warning(
                'PreemptionHook: training does not run in the main thread; '
                'SIGTERM/SIGUSR1 keep their default action (no save).')

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs=None) -> None:
        """Stop after this iteration if any rank got a signal."""
        signum = self._agreed_signal()
        if signum is None:
            return
        name = signal.Signals(signum).name
        checkpoint = self._save(runner)
        done = runner.iter + 1
        saved = (f'saved {checkpoint}' if checkpoint else
                 'no checkpoint hook, nothing saved')
        runner.logger.warning(
            f'Preempted by {name} during iteration {done}: {saved}; exiting '
            f'with status {self.exit_code} (continue with --resume).')
        if get_world_size() > 1:
            barrier()  # rank 0 has committed the checkpoint
            _flush_logs(runner)
            os._exit(self.exit_code)
        _flush_logs(runner)  # after_run, which closes them, will not run
        self.release_signals()
        raise TrainingPreempted(self.exit_code, name, checkpoint)

    def after_train(self, runner) -> None:
        """Restore the default handlers once the train loop is over."""
        self.release_signals()

    def after_run(self, runner) -> None:
        """Restore the default handlers (idempotent)."""
        self.release_signals()

    # -- helpers -------------------------------------------------------------

    def _agreed_signal(self) -> Optional[int]:
        """The signal any rank received (all ranks get the same answer)."""
        if get_world_size() == 1:
            return self.received
        flag = torch.tensor([self.received or 0], dtype=torch.int64)
        all_reduce(flag, op='max')
        return int(flag.item()) or None

    def _save(self, runner) -> Optional[str]:
        """Save through the checkpoint hook, unless it saved this step."""
        hook = next((h for h in runner.hooks if isinstance(h, CheckpointHook)),
                    None)
        if hook is None:
            return None
        step = runner.epoch + 1 if hook.by_epoch else runner.iter + 1
        path = hook.file_backend.join_path(hook.out_dir,
                                           hook.filename_tmpl.format(step))
        if hook.last_ckpt != path:  # not saved by its own interval
            hook._save_checkpoint(runner)
        return hook.last_ckpt


def _flush_logs(runner) -> None:
    """Flush what ``os._exit`` would lose: the visualizer's backends
    (TensorBoard buffers its events), the log handlers, stdout/stderr."""
    try:
        runner.visualizer.close()
    except Exception:  # a backend that cannot close: the logs still go
        pass
    for logger in (runner.logger, logging.getLogger()):
        for handler in logger.handlers:
            handler.flush()
    sys.stdout.flush()
    sys.stderr.flush()
