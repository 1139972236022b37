# Copyright (c) OpenMMLab. All rights reserved.
"""A test-only hook that records what each DDP rank trained on.

Loaded by ``tests/test_integration/test_ddp_cpu.py`` through the config's
``custom_imports`` (the test puts ``tests/`` on ``PYTHONPATH``; a package
called ``tests`` in site-packages shadows this directory, so the module is
imported top-level as ``ddp_probe_hook``).

Per rank ``r`` it writes, under ``out_dir``:

- ``probe_rank{r}.pth`` at iteration ``probe_iter``, just before the
  optimizer step: the raw data batch the rank received, the weights and
  buffers the forward used, the schedule's switches at that iteration, and
  the gradients as DDP left them (averaged over ranks).
- ``final_rank{r}.pth`` after training: the model's state dict.
"""
import os
import os.path as osp
from typing import Optional

import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmseg.registry import HOOKS


def _unwrap(runner) -> torch.nn.Module:
    model = runner.model
    return model.module if is_model_wrapper(model) else model


def _cpu_state(model: torch.nn.Module) -> dict:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


@HOOKS.register_module(force=True)
class DDPProbeHook(Hook):
    """Dump one iteration's batch, weights and gradients, and the final
    weights, of every rank.

    Args:
        probe_iter (int): 0-based iteration to record.
        out_dir (str): Directory of the dumps.
        switches (tuple[str]): ``PhaseState`` fields of the model's
            schedule at ``probe_iter``, recorded with the probe. Defaults
            to ``('gmm_filter', 'consistency')``.
    """

    priority = 'LOWEST'

    def __init__(self,
                 probe_iter: int,
                 out_dir: str,
                 switches: tuple = ('gmm_filter', 'consistency')) -> None:
        self.probe_iter = probe_iter
        self.out_dir = out_dir
        self.switches = tuple(switches)
        self._batch: Optional[dict] = None

    def before_train(self, runner) -> None:
        os.makedirs(self.out_dir, exist_ok=True)
        wrapper = runner.optim_wrapper
        step = wrapper.step

        def probed_step(**kwargs):
            # The gradients are final here (DDP has all-reduced them) and
            # the weights are still those the forward used.
            if runner.iter == self.probe_iter:
                self._dump_probe(runner)
            return step(**kwargs)

        wrapper.step = probed_step

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch: Optional[dict] = None) -> None:
        if runner.iter == self.probe_iter:
            self._batch = data_batch

    def _dump_probe(self, runner) -> None:
        model = _unwrap(runner)
        grads = {
            name: None if p.grad is None else p.grad.detach().cpu().clone()
            for name, p in model.named_parameters()
        }
        torch.save(
            dict(
                iter=runner.iter,
                batch=self._batch,
                state_dict=_cpu_state(model),
                grads=grads,
                switches={
                    s: getattr(model.schedule.state(runner.iter), s)
                    for s in self.switches
                }),
            osp.join(self.out_dir, f'probe_rank{get_rank()}.pth'))

    def after_train(self, runner) -> None:
        torch.save(
            _cpu_state(_unwrap(runner)),
            osp.join(self.out_dir, f'final_rank{get_rank()}.pth'))
