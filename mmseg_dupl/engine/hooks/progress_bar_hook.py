# Copyright (c) OpenMMLab. All rights reserved.
"""A terminal progress bar with an ETA for iteration-based training."""
from typing import Optional, Sequence, Union

from mmengine.hooks import Hook
from mmengine.utils import ProgressBar
from mmseg.registry import HOOKS

DATA_BATCH = Optional[Union[dict, tuple, list]]


@HOOKS.register_module()
class ProgressBarHook(Hook):
    """Draw mmengine's ``ProgressBar`` (elapsed time and ETA) over the
    training iterations, for people watching a short run such as the demo.

    mmengine's logger already prints an ETA every ``interval`` iterations;
    this hook adds a bar that moves every iteration. It resumes at the
    runner's iteration after ``--resume``.

    Args:
        bar_width (int): Characters of the bar. Defaults to 40.
    """

    priority = 'VERY_LOW'

    def __init__(self, bar_width: int = 40) -> None:
        self.bar_width = bar_width
        self._bar: Optional[ProgressBar] = None

    def before_train(self, runner) -> None:
        """Start a bar over the iterations still to run."""
        remaining = max(runner.max_iters - runner.iter, 0)
        self._bar = ProgressBar(remaining, bar_width=self.bar_width)

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: DATA_BATCH = None,
                         outputs: Optional[Sequence] = None) -> None:
        """Advance the bar by one iteration."""
        if self._bar is not None:
            self._bar.update()

    def after_train(self, runner) -> None:
        """End the bar's line."""
        if self._bar is not None:
            self._bar.file.write('\n')
            self._bar = None
