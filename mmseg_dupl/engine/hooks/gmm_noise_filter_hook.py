# Copyright (c) OpenMMLab. All rights reserved.
"""Switch the GMM noise filter on from an iteration and log what it did."""
from typing import Optional

from mmengine.hooks import Hook
from mmseg.registry import HOOKS

from .model_attribute import resolve_module
from .unwrap import unwrap_model

DATA_BATCH = Optional[dict]


@HOOKS.register_module()
class GMMNoiseFilterHook(Hook):
    """Turn the GMM noise filter (algorithm.md §8) on at its start
    iteration, from ``runner.iter`` alone (resume is exact), and log per
    iteration what it did.

    Two uses:

    - DuPL (``target=None``): the start is the model's, configured once
      in ``model.train_cfg.phases.gmm`` (with ``noise_filter`` and
      ``consistency_delay``). Before each iteration the hook sets
      ``model.set_noise_filter(filter, consistency)``; the consistency
      term follows ``consistency_delay`` iterations after the filter.
    - Any model: ``target`` names a ``GMMFilteredLoss`` (or any module
      with an ``enabled`` flag and ``last_fit``) by its dotted path, e.g.
      ``'decode_head.loss_decode'``, and ``start_iter`` is required.

    After each filtered iteration it logs, per student (``gmm.s1.*``) or
    for the target (``gmm.*``): ``removed`` (fraction of foreground
    pseudo labels removed), ``mean_gap`` (mean ``|mu_0 - mu_1|`` of the
    fitted images), ``skipped_pixels`` (images with too few fit pixels)
    and ``skipped_gap`` (fits whose means are within eta).

    Args:
        target (str, optional): Dotted path of the filtered loss; None
            drives a ``DualStudentSegmentor``.
        start_iter (int, optional): First filtered iteration (``target``
            mode only).
    """

    priority = 'ABOVE_NORMAL'

    def __init__(self,
                 target: Optional[str] = None,
                 start_iter: Optional[int] = None) -> None:
        if target is None and start_iter is not None:
            raise ValueError(
                'GMMNoiseFilterHook: start_iter is set once, in '
                'model.train_cfg.phases.gmm, for DuPL; give it here only '
                'with target=...')
        if target is not None and (start_iter is None or int(start_iter)
                                   != start_iter or start_iter < 0):
            raise ValueError(f'GMMNoiseFilterHook(target={target!r}) needs '
                             f'start_iter, an int >= 0, got {start_iter!r}')
        self.target = target
        self.start_iter = start_iter

    def _filtered_module(self, runner):
        """The module whose ``enabled`` flag the hook drives."""
        return resolve_module(
            unwrap_model(runner), self.target, 'GMMNoiseFilterHook')

    def before_train(self, runner) -> None:
        """Check that the model (or target) can be driven."""
        model = unwrap_model(runner)
        if self.target is None:
            if not callable(getattr(model, 'set_noise_filter', None)):
                raise TypeError(
                    f'GMMNoiseFilterHook: {type(model).__name__} has no '
                    "set_noise_filter; give target='decode_head.loss_decode' "
                    '(a GMMFilteredLoss) and start_iter')
            return
        module = self._filtered_module(runner)
        if not hasattr(module, 'enabled'):
            raise TypeError(
                f'GMMNoiseFilterHook: target {self.target!r} is a '
                f'{type(module).__name__}, which has no enabled flag (use '
                'GMMFilteredLoss)')

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch: DATA_BATCH = None) -> None:
        """Switch the filter (and DuPL's consistency term) for this
        iteration."""
        n = runner.iter
        if self.target is None:
            model = unwrap_model(runner)
            model.set_noise_filter(
                model.schedule.gmm_filter_on(n),
                model.schedule.consistency_on(n))
            return
        self._filtered_module(runner).enabled = n >= self.start_iter

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: DATA_BATCH = None,
                         outputs: Optional[dict] = None) -> None:
        """Log the fits of this iteration (once; then forget them)."""
        if self.target is None:
            model = unwrap_model(runner)
            fits, model.last_noise_fits = model.last_noise_fits, None
            named = {f'gmm.s{k}': fit
                     for k, fit in enumerate(fits or (), start=1)}
        else:
            module = self._filtered_module(runner)
            fit, module.last_fit = module.last_fit, None
            named = {'gmm': fit} if fit is not None else {}
        for prefix, fit in named.items():
            for key, value in fit.stats().items():
                runner.message_hub.update_scalar(f'train/{prefix}.{key}',
                                                 value)
