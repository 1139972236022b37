# Copyright (c) OpenMMLab. All rights reserved.
"""A Runner that resumes past damaged checkpoints and loads strictly."""
import re
from collections import OrderedDict
from typing import Callable, Union

from mmengine.optim import OptimWrapper, OptimWrapperDict
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint
from mmseg.registry import RUNNERS

from mmseg_dupl.engine.optimizers.learning_rate_check import \
    check_learning_rates
from mmseg_dupl.utils.checked_load import check_load_report, load_into
from .cpu_launch_runner import CPULaunchRunner
from .resume_candidates import checkpoint_out_dirs, choose_resume_checkpoint


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
    """

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
