# Copyright (c) OpenMMLab. All rights reserved.
"""Stop training at the first non-finite loss."""
from typing import Optional

from mmengine.hooks import Hook
from mmseg.registry import HOOKS

from mmseg_dupl.utils.finite import non_finite_names


@HOOKS.register_module()
class FiniteLossHook(Hook):
    """Raise as soon as a loss term is NaN or infinite.

    mmengine 0.10.7 has no such hook (mmdet's ``CheckInvalidLossHook`` is
    the pattern; mmdet is not a dependency). After every training
    iteration, the logged outputs of ``train_step`` (the loss terms and
    their sum ``loss``, as ``parse_losses`` returns them) are checked; a
    non-finite one raises ``FloatingPointError`` naming the iteration
    (1-based, as the log prints it) and every non-finite term.

    Priority ``ABOVE_NORMAL``: it runs before ``CheckpointHook``
    (``VERY_LOW``) in ``after_train_iter``, so no checkpoint of that
    iteration is written (``DurableCheckpointHook`` also refuses to save
    non-finite weights).

    Args:
        interval (int): Check every ``interval`` iterations. Defaults to 1
            (the check reads a handful of scalars).
    """

    priority = 'ABOVE_NORMAL'

    def __init__(self, interval: int = 1) -> None:
        if interval < 1:
            raise ValueError(f'FiniteLossHook.interval must be >= 1, got '
                             f'{interval}')
        self.interval = interval

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs: Optional[dict] = None) -> None:
        """Check the loss terms of this iteration."""
        if not outputs or not self.every_n_train_iters(runner, self.interval):
            return
        losses = {k: v for k, v in outputs.items() if 'loss' in k}
        bad = non_finite_names(losses)
        if bad:
            values = ', '.join(f'{k}={float(losses[k])}' for k in bad)
            raise FloatingPointError(
                f'non-finite loss at iteration {runner.iter + 1}: {values}. '
                'Training stopped before any checkpoint of this iteration '
                'was written; lower the learning rate or check the inputs.')
