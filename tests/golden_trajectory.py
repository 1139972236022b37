# Copyright (c) OpenMMLab. All rights reserved.
"""Golden 8-iteration trajectory of ``DualStudentSegmentor`` across the
A -> B -> C boundaries: every loss term of every iteration and the final
weights, so that a change that moves the training trajectory (not only one
step) shows. Companion of ``golden_phase_c.py`` (one phase-C step).

The tiny model of ``dupl_test_utils.tiny_model_cfg`` (phases: seg labels
from 2, weighted from 3; GMM filter and consistency computed from 5,
consistency weighted from 6), AdamW as the reference (betas 0.9/0.999,
weight decay 0.01 in every group, x10 lr for classifiers and decoder),
batches ``make_batch(seed=n)``, one thread. Regenerate::

    python tests/golden_trajectory.py   # -> tests/golden/
"""
import argparse
import os
import os.path as osp
import sys
from typing import Dict, List, Tuple

import torch

TESTS = osp.dirname(osp.abspath(__file__))
GOLDEN_FILE = osp.join(TESTS, 'golden', 'golden_trajectory.pt')
ITERS, LR, SEED = 8, 1e-3, 0
# A consistency confidence a randomly initialised model reaches, so that
# the consistency term is not 0 (as golden_phase_c.py).
TRAIN_CFG = dict(conf_thr=0.27)


def build_optimizer(model: torch.nn.Module) -> torch.optim.AdamW:
    """AdamW with the reference's groups: x10 for the classifiers and the
    decode heads, weight decay 0.01 everywhere."""
    fast = ('classifier', 'decode_head')
    groups: Dict[bool, List[torch.nn.Parameter]] = {True: [], False: []}
    for name, param in model.named_parameters():
        if param.requires_grad:
            groups[any(k in name for k in fast)].append(param)
    return torch.optim.AdamW(
        [dict(params=groups[False], lr=LR),
         dict(params=groups[True], lr=10 * LR)],
        betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)


def train(model: torch.nn.Module, iters: int = ITERS, on_grads=None,
          on_step=None) -> Tuple[List[Dict[str, float]], dict]:
    """``iters`` iterations following the model's schedule; returns the
    loss terms of each iteration and the final state dict. ``on_grads(n,
    model, optimizer)`` is called after each backward, ``on_step`` (same
    arguments) after each optimizer step."""
    from dupl_test_utils import make_batch
    optimizer = build_optimizer(model)
    history = []
    for n in range(iters):
        model.follow_schedule(n)
        losses = model(**make_batch(seed=n), mode='loss')
        total, _ = model.parse_losses(losses)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        if on_grads is not None:
            on_grads(n, model, optimizer)
        optimizer.step()
        if on_step is not None:
            on_step(n, model, optimizer)
        history.append({k: float(v.detach()) for k, v in losses.items()})
    return history, {k: v.detach().clone()
                     for k, v in model.state_dict().items()}


def build_model(**train_cfg) -> torch.nn.Module:
    """The tiny segmentor with its seeded initial weights, train mode."""
    from mmseg.registry import MODELS

    from dupl_test_utils import init_weights_quietly, tiny_model_cfg
    torch.manual_seed(SEED)
    model = MODELS.build(tiny_model_cfg(**train_cfg))
    init_weights_quietly(model)
    return model.train()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', default=GOLDEN_FILE)
    args = parser.parse_args()
    torch.set_num_threads(1)
    from mmengine.registry import init_default_scope
    init_default_scope('mmseg')
    import mmseg_dupl  # noqa: F401
    model = build_model(**TRAIN_CFG)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    history, final = train(model)
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    torch.save(dict(initial=initial, history=history, final=final,
                    train_cfg=TRAIN_CFG,
                    versions=dict(torch=torch.__version__)), args.out)
    print(f'wrote {args.out}: {len(history)} iterations, '
          f'{len(final)} tensors')


if __name__ == '__main__':
    sys.path.insert(0, TESTS)
    main()
