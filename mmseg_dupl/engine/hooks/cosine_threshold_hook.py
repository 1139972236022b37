# Copyright (c) OpenMMLab. All rights reserved.
"""Cosine schedule of DuPL's high CAM threshold (spec 7)."""
from typing import Optional, Sequence, Union

import torch
from mmengine.hooks import Hook
from mmseg.registry import HOOKS
from torch import Tensor

from mmseg_dupl.models.utils.schedules import cosine_descent
from .unwrap import unwrap_model

DATA_BATCH = Optional[Union[dict, tuple, list]]
Value = Union[float, Sequence[float]]


@HOOKS.register_module()
class CosineThresholdHook(Hook):
    """Move a model threshold from ``start`` to ``end`` along a cosine.

    Before every training iteration ``n`` it writes::

        cosine_descent(start, end, n - begin_iter, end_iter - begin_iter)

    into the model's ``target`` tensor (in place, so a registered buffer
    stays registered and keeps its device and dtype). The value depends on
    ``runner.iter`` alone, so a resumed run needs no hook state.

    DuPL (VOC) uses ``start=0.70``, a per-class ``end`` (0.70 for six
    classes, 0.55 for the rest), ``begin_iter=cam_iters=2000`` and
    ``end_iter=max_iters=20000``; COCO uses ``0.65 -> 0.55`` over
    ``12000 -> 80000``.

    The model must own ``target`` as a float tensor, e.g. a buffer of shape
    (C,); the hook checks this in ``before_train``. No segmentor class is
    assumed, so the hook works with any model exposing such a tensor.

    Args:
        start (float | Sequence[float]): Value up to ``begin_iter``, either
            one float or one per class. Defaults to 0.7.
        end (float | Sequence[float]): Value from ``end_iter - 1`` on,
            either one float or one per class. Defaults to 0.55.
        begin_iter (int): Iteration where the descent begins.
            Defaults to 2000.
        end_iter (int): Iteration where it has ended. Defaults to 20000.
        target (str): Name of the model attribute to write.
            Defaults to 'high_thr'.
        log_name (str, optional): The mean threshold is logged as
            ``train/<log_name>``; None disables logging (e.g. when the model
            already reports the value in its loss dict, which mmengine logs
            under the same name). Defaults to 'thr_high'.
    """

    priority = 'NORMAL'

    def __init__(self,
                 start: Value = 0.7,
                 end: Value = 0.55,
                 begin_iter: int = 2000,
                 end_iter: int = 20000,
                 target: str = 'high_thr',
                 log_name: Optional[str] = 'thr_high') -> None:
        if end_iter - begin_iter < 2:
            raise ValueError(
                'CosineThresholdHook: end_iter - begin_iter must be at least '
                f'2, got begin_iter={begin_iter}, end_iter={end_iter}')
        self.start = self._as_tensor(start, 'start')
        self.end = self._as_tensor(end, 'end')
        self.begin_iter = begin_iter
        self.end_iter = end_iter
        self.target = target
        self.log_name = log_name

    @staticmethod
    def _as_tensor(value: Value, name: str) -> Tensor:
        """Float64 0-d or 1-d tensor, so per-class values broadcast."""
        tensor = torch.as_tensor(value, dtype=torch.float64)
        if tensor.dim() > 1:
            raise ValueError(f'CosineThresholdHook: {name} must be a float '
                             f'or a list of floats, got {value!r}')
        return tensor

    def threshold_at(self, cur_iter: int) -> Tensor:
        """Threshold for iteration ``cur_iter``.

        Args:
            cur_iter (int): The 0-based training iteration.

        Returns:
            Tensor: Float64, shape () or (C,) as given by ``start``/``end``.
        """
        return cosine_descent(self.start, self.end, cur_iter - self.begin_iter,
                              self.end_iter - self.begin_iter)

    def before_train(self, runner) -> None:
        """Fail fast if the model lacks a fitting ``target`` tensor."""
        model = unwrap_model(runner)
        buf = getattr(model, self.target, None)
        if not isinstance(buf, Tensor) or not buf.is_floating_point():
            raise AttributeError(
                f'CosineThresholdHook: {type(model).__name__} has no float '
                f'tensor attribute {self.target!r} (hook argument target)')
        shape = self.threshold_at(self.begin_iter).shape
        try:
            ok = torch.broadcast_shapes(shape, buf.shape) == buf.shape
        except RuntimeError:
            ok = False
        if not ok:
            raise ValueError(
                f'CosineThresholdHook: start/end of shape {tuple(shape)} do '
                f'not fit {type(model).__name__}.{self.target} of shape '
                f'{tuple(buf.shape)} (one value per class expected)')

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch: DATA_BATCH = None) -> None:
        """Write the threshold of ``runner.iter`` into the model."""
        buf = getattr(unwrap_model(runner), self.target)
        value = self.threshold_at(runner.iter)
        with torch.no_grad():
            buf.copy_(value.expand(buf.shape))
        if self.log_name is not None:
            runner.message_hub.update_scalar(
                f'train/{self.log_name}',
                float(value.expand(buf.shape).mean()))
