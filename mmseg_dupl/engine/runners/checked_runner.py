# Copyright (c) OpenMMLab. All rights reserved.
"""A Runner that resumes past damaged checkpoints and loads strictly."""
import copy
import inspect
import re
import weakref
from collections import OrderedDict
from typing import Callable, Optional, Union

import torch.distributed as dist
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapper, OptimWrapperDict
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint
from mmseg.registry import RUNNERS
from mmseg.utils import ConfigType

from mmseg_dupl.engine.optimizers.learning_rate_check import \
    check_learning_rates
from mmseg_dupl.utils.checked_load import check_load_report, load_into
from ..hooks.preemption_hook import PreemptionHook
from . import rank_failure
from .cpu_launch_runner import CPULaunchRunner
from .resume_candidates import checkpoint_out_dirs, choose_resume_checkpoint
from .resume_settings import (ConfigSettings, check_resume_fits,
                              config_differences, listing)
from .scheduler_length import follow_train_max_iters, length_mismatches
from .work_dir_lock import WorkDirLock, rank_before_init


@RUNNERS.register_module()
class CheckedRunner(CPULaunchRunner):
    """``CPULaunchRunner`` with a safe ``--resume`` and strict loading.

    Set as ``runner_type='CheckedRunner'`` in
    ``configs/_base_/default_runtime.py``; ``tools/train.py`` and
    ``tools/test.py`` build it from the registry.

    Resume (``resume=True`` without ``load_from``): mmengine reads the
    path in ``work_dir/last_checkpoint`` and fails on an empty pointer
    (``FileNotFoundError:  can not be found.``), a pointer to a deleted
    file, or a truncated newest checkpoint, although older checkpoints
    load. :meth:`load_or_resume` instead resumes from the newest
    checkpoint of ``work_dir`` that loads, and logs which one and why
    (see :func:`choose_resume_checkpoint`); a pointer naming a file
    outside ``work_dir`` (a copied work dir) is ignored with a warning.

    Why a Runner method and not a hook's ``before_run``: ``Runner.train``
    calls ``before_run`` before ``load_or_resume``, so a hook could only
    redirect the resume through the private ``_load_from``; and
    ``Runner.test`` (``tools/test.py``) needs the strict load below, which
    is :meth:`load_checkpoint`, a Runner method. Overriding both in one
    subclass keeps mmengine's call order and its ``resume`` body.

    Loading (``load_from``, ``tools/test.py``'s checkpoint, ``--resume``):
    missing or shape-mismatched model tensors raise
    ``CheckpointMismatchError`` naming the keys, unless the config sets
    ``allow_partial_load=True`` (``tools/test.py --allow-partial-load``);
    the tensors loaded per part (``student1``, ``student2``, ...) are
    logged.

    Optimizer: a parameter group with a negative learning rate (e.g. a
    negative ``paramwise_cfg.custom_keys`` ``lr_mult``) is refused when
    the optimizer is built, naming the entry.

    Reliability (issue 23):

    - one owner per work dir: rank 0 takes an exclusive lock on
      ``work_dir/run.lock`` before anything is written there; a second run
      into the same work dir is refused with the owner's pid
      (:class:`~.work_dir_lock.WorkDirLock`);
    - preemption: ``default_hooks.preemption`` (:class:`PreemptionHook`)
      is added unless the config sets it, and its SIGTERM / SIGUSR1
      handlers are installed before the train loop forks DataLoader
      workers;
    - a resumed run follows its config: the scheduler lengths tied to
      ``train_cfg.max_iters`` in the config file follow it, a mismatch
      left is a warning at start, the checkpoint's optimizer and scheduler
      settings are replaced by the config's (each difference logged), a
      checkpoint of another model (a single-student one into a
      two-student config) is refused before loading, and resuming at or
      past ``max_iters`` says so;
    - a collective that fails because a rank stopped answering raises
      :class:`~.rank_failure.RankFailureError` naming that rank.
    """

    def __init__(self, *args, **kwargs) -> None:
        bound = inspect.signature(Runner.__init__).bind(
            self, *args, **kwargs).arguments
        self._resuming = False
        self._resume_meta: Optional[dict] = None
        self._checked_lengths = False
        self._work_dir_lock = self._lock_work_dir(
            bound['work_dir'], bound.get('launcher', 'none'))
        super().__init__(*args, **kwargs)
        if self._work_dir_lock is not None and not self._work_dir_lock.held:
            self.logger.warning(
                f'{self._work_dir_lock.path}: the file system does not '
                'support flock; another run could write into this work dir.')

    def _lock_work_dir(self, work_dir: str,
                       launcher: str) -> Optional[WorkDirLock]:
        """Rank 0 locks ``work_dir`` (raises if another run holds it)."""
        rank = dist.get_rank() if dist.is_available() and \
            dist.is_initialized() else rank_before_init(launcher)
        if rank != 0:
            return None
        lock = WorkDirLock(work_dir)
        lock.acquire()
        # released with the runner, or by the kernel when the process ends
        weakref.finalize(self, lock.release)
        return lock

    @classmethod
    def from_cfg(cls, cfg: ConfigType) -> 'Runner':
        """Tie the scheduler lengths to ``train_cfg.max_iters``, then build
        as :class:`CPULaunchRunner` does."""
        cfg = copy.deepcopy(cfg)
        notes = follow_train_max_iters(cfg)
        runner = super().from_cfg(cfg)
        for note in notes:
            runner.logger.info(note)
        return runner

    def register_default_hooks(self, hooks=None) -> None:
        """mmengine's default hooks plus ``preemption``
        (:class:`PreemptionHook`); ``preemption=None`` leaves it out."""
        hooks = dict(hooks or {})
        preemption = hooks.pop('preemption', dict(type='PreemptionHook'))
        super().register_default_hooks(hooks)
        if preemption is not None:
            self.register_hook(preemption)

    def train(self):
        """mmengine's ``train`` with the preemption signals caught from the
        start and a failed collective turned into a message naming the
        rank that stopped answering."""
        preemption = next(
            (h for h in self.hooks if isinstance(h, PreemptionHook)), None)
        if preemption is not None:
            preemption.catch_signals()
        try:
            return super().train()
        except Exception as e:
            if not (self.distributed and dist.is_initialized()
                    and dist.get_world_size() > 1
                    and rank_failure.is_collective_failure(e)):
                raise
            timeout = ((self.cfg.get('env_cfg') or {}).get('dist_cfg')
                       or {}).get('timeout')
            message = rank_failure.describe(e, self.iter, timeout)
            self.logger.error(message)
            raise rank_failure.RankFailureError(message) from e
        finally:
            if preemption is not None:
                preemption.release_signals()

    def build_param_scheduler(self, scheduler):
        """mmengine's build, then a warning at start for each scheduler
        whose length is not ``train_cfg.max_iters``."""
        built = super().build_param_scheduler(scheduler)
        if not self._checked_lengths and isinstance(built, list):
            self._checked_lengths = True
            for line in length_mismatches(built, self.max_iters):
                self.logger.warning(
                    f'{line}: the schedule does not span the training. Give '
                    'both the same value, or leave the scheduler\'s tied to '
                    'train_cfg.max_iters in the config file (it then '
                    'follows --cfg-options train_cfg.max_iters).')
        return built

    def build_optim_wrapper(self, optim_wrapper: Union[dict, OptimWrapper]
                            ) -> Union[OptimWrapper, OptimWrapperDict]:
        """mmengine's ``build_optim_wrapper``, then refuse a parameter
        group with a negative learning rate (:func:`check_learning_rates`
        names the ``paramwise_cfg.custom_keys`` entry)."""
        paramwise_cfg = optim_wrapper.get('paramwise_cfg') if isinstance(
            optim_wrapper, dict) else None
        built = super().build_optim_wrapper(optim_wrapper)
        check_learning_rates(built, self.model, paramwise_cfg)
        return built

    @property
    def allow_partial_load(self) -> bool:
        """The config's ``allow_partial_load`` (default False)."""
        return bool(self.cfg.get('allow_partial_load', False))

    def load_or_resume(self) -> None:
        """mmengine's ``load_or_resume``, resuming from the newest
        checkpoint that loads when resuming from ``work_dir``."""
        if self._has_loaded:
            return None
        if self._resume and self._load_from is None:
            path = choose_resume_checkpoint(
                self.work_dir, self.logger,
                checkpoint_out_dirs(self.work_dir, self.hooks))
            if path is None:
                return None  # nothing saved yet: start from scratch
            self.resume(path)
            self._has_loaded = True
            return None
        return super().load_or_resume()

    def resume(self, filename: str, *args, **kwargs) -> None:
        """mmengine's ``resume``, following the config (class docstring).

        Args:
            filename (str): The checkpoint.
            *args, **kwargs: Those of ``Runner.resume``.
        """
        settings = None
        if isinstance(self.optim_wrapper, OptimWrapper) and isinstance(
                self.param_schedulers, list):
            settings = ConfigSettings(self.optim_wrapper,
                                      self.param_schedulers)
        self._resuming = True
        try:
            super().resume(filename, *args, **kwargs)
        finally:
            self._resuming = False
        self._log_config_differences(filename)
        if settings is not None:
            changes = settings.restore(self.optim_wrapper,
                                       self.param_schedulers)
            if changes:
                self.logger.warning(
                    '--resume: the optimizer and scheduler settings come '
                    f'from the config, not from {filename}:' +
                    listing(changes))
        if self.iter >= self.max_iters:
            self.logger.warning(
                f'--resume: {filename} is at iteration {self.iter} and '
                f'train_cfg.max_iters is {self.max_iters}: nothing left to '
                'train. Raise train_cfg.max_iters (--cfg-options '
                'train_cfg.max_iters=N) to train further.')

    def _log_config_differences(self, filename: str) -> None:
        """Warn about each config value that differs from the run that
        wrote ``filename``."""
        text = (self._resume_meta or {}).get('cfg')
        if not text:
            return
        try:
            lines = config_differences(text, self.cfg)
        except Exception as e:  # an unparsable stored config
            self.logger.warning(f'--resume: cannot compare the config with '
                                f'the one stored in {filename} ({e})')
            return
        if lines:
            self.logger.warning(
                f'--resume: the config differs from the run that wrote '
                f'{filename} in {len(lines)} values; the config\'s apply from '
                f'iteration {self.iter}:' + listing(lines))

    def load_checkpoint(self,
                        filename: str,
                        map_location: Union[str, Callable] = 'cpu',
                        strict: bool = False,
                        revise_keys: list = [(r'^module.', '')]) -> dict:
        """mmengine's ``load_checkpoint`` with the strictness above.

        Args:
            filename (str): Checkpoint path or URL.
            map_location (str | Callable): As ``torch.load``.
            strict (bool): Also refuse unexpected keys (mmengine's
                meaning); missing or mismatched keys always raise unless
                ``allow_partial_load``. Defaults to False.
            revise_keys (list): ``(pattern, replacement)`` applied to the
                keys. Defaults to stripping ``module.``.

        Returns:
            dict: The loaded checkpoint.
        """
        checkpoint = _load_checkpoint(filename, map_location=map_location)
        if self._resuming:
            self._check_resume_fits(checkpoint, filename)
        self.call_hook('after_load_checkpoint', checkpoint=checkpoint)
        state_dict = checkpoint.get('state_dict', checkpoint)
        metadata = getattr(state_dict, '_metadata', OrderedDict())
        for pattern, replacement in revise_keys:
            state_dict = OrderedDict(
                (re.sub(pattern, replacement, k), v)
                for k, v in state_dict.items())
        state_dict._metadata = metadata
        report = load_into(self.model, state_dict)
        if strict and report.unexpected:
            report.errors.append(
                f'unexpected keys (strict): {report.unexpected}')
        check_load_report(report, filename, self.allow_partial_load,
                          'allow_partial_load=True (tools/test.py: '
                          '--allow-partial-load)')
        self._has_loaded = True
        self.logger.info(f'Load checkpoint from {filename}')
        return checkpoint

    def _check_resume_fits(self, checkpoint: dict, filename: str) -> None:
        """Refuse a checkpoint of another model before loading it."""
        self._resume_meta = checkpoint.get('meta') or {}
        model = self.model.module if is_model_wrapper(self.model) else \
            self.model
        optimizer = self.optim_wrapper.optimizer if isinstance(
            self.optim_wrapper, OptimWrapper) else None
        check_resume_fits(checkpoint, model.state_dict().keys(), optimizer,
                          filename)


def build_runner(cfg) -> Runner:
    """Build ``cfg.runner_type`` from the registry, else mmengine's Runner
    (what mmseg's ``tools/train.py`` does)."""
    if 'runner_type' in cfg:
        # Look the type up in the config's scope, not in the one the
        # process set last (an mmpretrain Runner earlier in the same
        # process, e.g. the toy pretraining, leaves 'mmpretrain' current,
        # whose registry does not hold our runners). Not a temporary
        # overwrite: leaving it drops the scope the Runner sets up.
        if cfg.get('default_scope'):
            init_default_scope(cfg.default_scope)
        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)
