# Copyright (c) OpenMMLab. All rights reserved.
"""Anneal a threshold on DuPL's cosine descent, iteration by iteration."""
from typing import List, Optional, Sequence, Union

import torch
from mmengine.hooks import Hook
from mmseg.registry import HOOKS

from mmseg_dupl.models.schedules.cosine_descent import cosine_descent
from .model_attribute import resolve_parent
from .unwrap import unwrap_model

DATA_BATCH = Optional[dict]
Threshold = Union[float, Sequence[float]]


@HOOKS.register_module()
class CosineThresholdHook(Hook):
    """Set a threshold to ``cosine_descent(start, end, n - begin_iter,
    end_iter - begin_iter)`` before every training iteration ``n``
    (algorithm.md §7), from ``runner.iter`` alone, so a resumed run is
    exact.

    Two uses:

    - DuPL (``target=None``): the values are the model's, configured once
      in ``model.train_cfg`` (``thresholds.high`` -> ``high_target``,
      per class, from ``phases.descent`` to ``phases.end``); the hook
      writes tau_c with ``model.set_class_thresholds`` and logs each
      class's value as ``tau_c.<class name>``.
    - Any model: ``target`` names an attribute by its dotted path in the
      model, e.g. the OHEM threshold ``'decode_head.sampler.thresh'``;
      ``start``, ``end`` and ``begin_iter`` are required, ``end_iter``
      defaults to ``runner.max_iters``; the value is logged as
      ``<target>``. A tensor attribute is overwritten in place.

    Args:
        target (str, optional): Dotted attribute path in the model; None
            drives a ``DualStudentSegmentor``'s class thresholds.
        start (float | list[float], optional): Value up to ``begin_iter``.
        end (float | list[float], optional): Value from ``end_iter - 1``.
        begin_iter (int, optional): First iteration of the descent.
        end_iter (int, optional): Length end of the descent.
    """

    priority = 'ABOVE_NORMAL'

    def __init__(self,
                 target: Optional[str] = None,
                 start: Optional[Threshold] = None,
                 end: Optional[Threshold] = None,
                 begin_iter: Optional[int] = None,
                 end_iter: Optional[int] = None) -> None:
        given = {
            k: v
            for k, v in dict(
                start=start, end=end, begin_iter=begin_iter,
                end_iter=end_iter).items() if v is not None
        }
        if target is None and given:
            raise ValueError(
                f'CosineThresholdHook: {sorted(given)} are set once, in '
                'model.train_cfg.thresholds and model.train_cfg.phases, for '
                'DuPL; give them here only with target=...')
        if target is not None:
            missing = [k for k in ('start', 'end', 'begin_iter')
                       if k not in given]
            if missing:
                raise ValueError(f'CosineThresholdHook(target={target!r}) '
                                 f'needs {", ".join(missing)}')
            if int(begin_iter) != begin_iter or begin_iter < 0:
                raise ValueError('CosineThresholdHook: begin_iter must be an '
                                 f'int >= 0, got {begin_iter!r}')
        self.target = target
        self.start, self.end = start, end
        self.begin_iter, self.end_iter = begin_iter, end_iter
        self.class_names: List[str] = []

    def before_train(self, runner) -> None:
        """Check the target and find the class names to log under."""
        model = unwrap_model(runner)
        if self.target is None:
            if not callable(getattr(model, 'set_class_thresholds', None)):
                raise TypeError(
                    f'CosineThresholdHook: {type(model).__name__} has no '
                    'set_class_thresholds; give target=... (a dotted '
                    'attribute path in the model) with start, end and '
                    'begin_iter')
            self.class_names = self._class_names(runner, model.num_classes)
            return
        resolve_parent(model, self.target, 'CosineThresholdHook')
        if self.end_iter is None:
            self.end_iter = runner.max_iters
        if self.end_iter - self.begin_iter < 2:
            raise ValueError(
                f'CosineThresholdHook: end_iter ({self.end_iter}) must be at '
                f'least begin_iter + 2 ({self.begin_iter + 2})')

    @staticmethod
    def _class_names(runner, num_classes: int) -> List[str]:
        """The foreground class names of the training set, or indices."""
        try:
            classes = list(runner.train_dataloader.dataset.metainfo.get(
                'classes', ()))
        except Exception:  # a runner without a train loader: indices
            classes = []
        if len(classes) == num_classes + 1:
            classes = classes[1:]  # background first
        if len(classes) != num_classes:
            classes = [str(i) for i in range(num_classes)]
        return classes

    def value(self, iteration: int) -> Union[float, torch.Tensor]:
        """The target's value at ``iteration`` (``target`` mode)."""
        start = torch.as_tensor(self.start, dtype=torch.float64) \
            if isinstance(self.start, (list, tuple)) else self.start
        end = torch.as_tensor(self.end, dtype=torch.float64) \
            if isinstance(self.end, (list, tuple)) else self.end
        return cosine_descent(start, end, iteration - self.begin_iter,
                              self.end_iter - self.begin_iter)

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch: DATA_BATCH = None) -> None:
        """Write the value of ``runner.iter`` and log it."""
        model = unwrap_model(runner)
        hub = runner.message_hub
        if self.target is None:
            tau = model.schedule.class_thresholds(runner.iter)
            model.set_class_thresholds(tau)
            for name, value in zip(self.class_names, tau.tolist()):
                hub.update_scalar(f'train/tau_c.{name}', value)
            return
        value = self.value(runner.iter)
        parent, name = resolve_parent(model, self.target,
                                      'CosineThresholdHook')
        current = getattr(parent, name)
        if isinstance(current, torch.Tensor):
            current.copy_(torch.as_tensor(value).to(current))
        else:
            value = value.tolist() if isinstance(value,
                                                  torch.Tensor) else value
            setattr(parent, name, value)
        mean = torch.as_tensor(value, dtype=torch.float64).mean().item()
        hub.update_scalar(f'train/{self.target}', mean)
