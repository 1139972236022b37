# Copyright (c) OpenMMLab. All rights reserved.
"""Switch on DuPL's GMM noise filter and consistency loss (spec 8, 9)."""
from typing import Optional, Union

from mmengine.hooks import Hook
from mmseg.registry import HOOKS

from .unwrap import unwrap_model

DATA_BATCH = Optional[Union[dict, tuple, list]]


@HOOKS.register_module()
class GMMNoiseFilterHook(Hook):
    """Turn the GMM pseudo-label filter and the consistency loss on.

    Before every training iteration ``n`` it sets, on the unwrapped model::

        model.<filter_attr>      = n >= start_iter
        model.<consistency_attr> = n >= start_iter + consistency_delay

    This reproduces the official loop (spec 9): the GMM branch runs for
    ``n >= gmm_iters`` (a ``<`` branch test), but the consistency weight
    uses ``n <= gmm_iters`` to stay 0. So at exactly ``n == start_iter``
    the labels are filtered while the consistency loss still has weight 0.
    ``consistency_delay=1`` (the default) reproduces that VOC bracket; the
    official COCO script weights the consistency loss already at
    ``n == gmm_iters``, which is ``consistency_delay=0``.
    Both flags follow from ``runner.iter`` alone, so resume is exact.

    The EM itself lives in the model (``models/utils/gmm.py``); a hook
    cannot reach tensors inside ``loss()``, it only switches the model.

    Logging: nothing to do here. The noise ratios the model returns in its
    loss dict (``noise_ratio.s1``, ``noise_ratio.s2``, tensors whose names
    do not contain ``loss``) pass ``BaseModel.parse_losses`` into the
    ``log_vars`` that ``train_step`` returns, and mmengine's
    ``RuntimeInfoHook.after_train_iter`` already writes every entry as
    ``train/<name>`` to the message hub. Logging them again here would
    count each value twice in the smoothed log.

    Args:
        start_iter (int): First iteration of the filter (official
            ``gmm_iters``). Defaults to 8000.
        filter_attr (str): Bool model attribute that enables the filter.
            Defaults to 'noise_filter_on'.
        consistency_attr (str): Bool model attribute that enables the
            consistency loss. Defaults to 'consistency_on'.
        consistency_delay (int): Iterations between the filter's start and
            the consistency loss's start. Defaults to 1 (official VOC).
    """

    priority = 'NORMAL'

    def __init__(self,
                 start_iter: int = 8000,
                 filter_attr: str = 'noise_filter_on',
                 consistency_attr: str = 'consistency_on',
                 consistency_delay: int = 1) -> None:
        if start_iter < 0:
            raise ValueError('GMMNoiseFilterHook: start_iter must be >= 0, '
                             f'got {start_iter}')
        if consistency_delay < 0:
            raise ValueError('GMMNoiseFilterHook: consistency_delay must be '
                             f'>= 0, got {consistency_delay}')
        self.consistency_delay = consistency_delay
        self.start_iter = start_iter
        self.filter_attr = filter_attr
        self.consistency_attr = consistency_attr

    def before_train(self, runner) -> None:
        """Fail fast if the model lacks either bool switch."""
        model = unwrap_model(runner)
        for arg, attr in (('filter_attr', self.filter_attr),
                          ('consistency_attr', self.consistency_attr)):
            if not isinstance(getattr(model, attr, None), bool):
                raise AttributeError(
                    f'GMMNoiseFilterHook: {type(model).__name__} has no bool '
                    f'attribute {attr!r} (hook argument {arg})')

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch: DATA_BATCH = None) -> None:
        """Set both switches from ``runner.iter``."""
        model = unwrap_model(runner)
        setattr(model, self.filter_attr, runner.iter >= self.start_iter)
        setattr(model, self.consistency_attr,
                runner.iter >= self.start_iter + self.consistency_delay)
