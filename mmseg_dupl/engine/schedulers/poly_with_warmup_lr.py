# Copyright (c) OpenMMLab. All rights reserved.
"""Linear warm-up followed by an absolute-step poly decay (algorithm.md
§9.1)."""
from typing import List, Optional, Union

from mmengine.optim import BaseOptimWrapper
from mmengine.optim.scheduler.lr_scheduler import LRSchedulerMixin
from mmengine.optim.scheduler.param_scheduler import _ParamScheduler
from mmseg.registry import PARAM_SCHEDULERS
from torch.optim import Optimizer

from .poly_warmup_factor import poly_warmup_factor


@PARAM_SCHEDULERS.register_module()
class PolyWithWarmupLR(LRSchedulerMixin, _ParamScheduler):
    """The official ``PolyWarmupAdamW`` learning-rate schedule.

    For optimizer step ``s`` (0-based) every param group gets::

        lr_g = initial_lr_g * poly_warmup_factor(s, warmup_iters, max_iters,
                                                 warmup_ratio, power)

    i.e. a linear warm-up from ``warmup_ratio`` to 1 over ``warmup_iters``
    steps, then ``(1 - s / max_iters) ** power`` with the *absolute* step.
    mmengine's ``LinearLR`` + ``PolyLR(begin=warmup_iters)`` cannot express
    this: PolyLR restarts from the base lr and counts from ``begin``.

    The value is computed from the step alone (not chained on the previous
    lr), so a resumed run gets exactly the uninterrupted lr. ``initial_lr``
    of each group already includes paramwise ``lr_mult``.

    Step indexing in an ``IterBasedTrainLoop``: the constructor applies the
    value of step 0, and ``ParamSchedulerHook.after_train_iter`` calls
    :meth:`step` once per iteration. So while ``runner.iter == s``, the
    optimizer update of that iteration uses ``lr(s)``, exactly as the
    official optimizer uses its ``global_step`` before incrementing it.

    Args:
        optimizer (Optimizer | BaseOptimWrapper): The optimizer.
        warmup_iters (int): Warm-up length in iterations. Defaults to 1500.
        warmup_ratio (float): LR multiplier at step 0. Defaults to 1e-6.
        power (float): Poly exponent. Defaults to 0.9.
        max_iters (int): Iterations of the whole schedule; the poly reaches
            0 at ``max_iters``. Defaults to 20000.
        begin (int): First step this scheduler updates the lr. The factor
            still uses the absolute step. Defaults to 0.
        end (int, optional): Accepted for mmengine compatibility and
            otherwise ignored: the lr is updated up to ``max_iters``, after
            which it stays (as the official optimizer stops updating it).
            mmengine's Runner fills ``end`` in itself, and when a config
            omits ``by_epoch=False`` it uses the train loop's
            ``max_epochs`` (1 for an ``IterBasedTrainLoop``), which would
            freeze the lr at its 1e-6 warm-up start. Defaults to None.
        last_step (int): Index of the last step, for resuming without a
            state dict. Defaults to -1.
        by_epoch (bool): Must be False: the schedule is per iteration.
        verbose (bool): Print the lr at every update. Defaults to False.
    """

    #: The value is a function of the step alone: ``CheckedRunner``
    #: recomputes it when a resumed run changes the settings.
    closed_form = True

    def __init__(self,
                 optimizer: Union[Optimizer, BaseOptimWrapper],
                 warmup_iters: int = 1500,
                 warmup_ratio: float = 1e-6,
                 power: float = 0.9,
                 max_iters: int = 20000,
                 begin: int = 0,
                 end: Optional[int] = None,
                 last_step: int = -1,
                 by_epoch: bool = False,
                 verbose: bool = False):
        if by_epoch:
            raise ValueError('PolyWithWarmupLR: by_epoch must be False, the '
                             'schedule counts iterations')
        # Validates the arguments once, at build time, with a clear message.
        poly_warmup_factor(0, warmup_iters, max_iters, warmup_ratio, power)
        self.warmup_iters = warmup_iters
        self.warmup_ratio = warmup_ratio
        self.power = power
        self.max_iters = max_iters
        super().__init__(
            optimizer,
            begin=begin,
            end=max_iters,
            last_step=last_step,
            by_epoch=by_epoch,
            verbose=verbose)

    def _get_value(self) -> List[float]:
        """Compute the lr of every group for the current step.

        Returns:
            list[float]: One lr per param group.
        """
        # ``last_step`` counts from ``begin``; the factor wants the
        # absolute iteration.
        step = self.begin + self.last_step
        factor = poly_warmup_factor(step, self.warmup_iters, self.max_iters,
                                    self.warmup_ratio, self.power)
        return [base * factor for base in self.base_values]
