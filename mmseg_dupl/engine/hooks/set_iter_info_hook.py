# Copyright (c) OpenMMLab. All rights reserved.
"""Give the model the iteration it trains (as mmdet's SetEpochInfoHook
gives the epoch)."""
import logging
from typing import Optional

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmseg.registry import HOOKS

from .unwrap import unwrap_model

DATA_BATCH = Optional[dict]


@HOOKS.register_module()
class SetIterInfoHook(Hook):
    """Call ``model.set_train_iter(runner.iter)`` before every training
    iteration.

    ``DualStudentSegmentor`` derives its label source (none in phase A,
    aux CAM or CAM) and which loss terms are weighted from it
    (algorithm.md §9). The value is ``runner.iter`` alone, so a resumed
    run is exact. At the start of a run it warns about DuPL phases that
    ``max_iters`` never reaches. Works with any model that has
    ``set_train_iter``.
    """

    priority = 'ABOVE_NORMAL'

    def before_train(self, runner) -> None:
        """Check the model and warn about phases the run never reaches."""
        model = unwrap_model(runner)
        if not callable(getattr(model, 'set_train_iter', None)):
            raise TypeError(
                f'SetIterInfoHook: {type(model).__name__} has no '
                'set_train_iter(iteration); remove the hook from '
                'custom_hooks')
        schedule = getattr(model, 'schedule', None)
        late = schedule.late_phases(runner.max_iters) if schedule else None
        if late:
            print_log(
                f'model.train_cfg.phases {late}: not reached within '
                f'train_cfg.max_iters={runner.max_iters}; scale the phases '
                'with max_iters',
                logger='current',
                level=logging.WARNING)

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch: DATA_BATCH = None) -> None:
        """Write ``runner.iter`` into the model."""
        unwrap_model(runner).set_train_iter(runner.iter)
