# Copyright (c) OpenMMLab. All rights reserved.
"""Golden phase-C ``loss()`` of ``DualStudentSegmentor``: every loss term
and the gradient of every parameter, stored from a named commit, so that a
speed-up or a refactor can prove it keeps the numerics.

The golden file holds everything the run depends on, so later changes to
the test helpers or to ``init_weights`` cannot move it: the initial
parameters, the preprocessed multi-branch batch (weak + strong views and
their metainfo), the iteration and the schedule state. The model is built
from ``dupl_test_utils.tiny_model_cfg`` with ``TRAIN_CFG`` on top (full PAR:
six dilations, ten iterations, on a 64x64 crop; GMM filter and consistency
on; per-class thresholds).

Regenerate (e.g. from today's commit, in a throw-away copy of it)::

    python tests/golden_phase_c.py --rev ac92b6c  # -> tests/golden/

(``--rev`` extracts the commit with ``git archive`` into a temporary
directory and runs this recipe there, with that commit's code and test
utilities; without it the working tree is used.)

Adapting to another schedule API: change ``enter_phase_c`` only; a renamed
loss term: change ``TERM_NAMES`` only.
"""
import argparse
import os
import os.path as osp
import shutil
import subprocess
import sys
import tempfile
from typing import Dict, List

import numpy as np
import torch

TESTS = osp.dirname(osp.abspath(__file__))
GOLDEN_FILE = osp.join(TESTS, 'golden', 'golden_phase_c.pt')
SIZE, BATCH, SEED, ITER = 64, 2, 0, 10
HIGH_THR = (0.62, 0.58, 0.55)  # per class; image tau_i = max over present
# Full PAR; thresholds that let a randomly initialised model flag noisy
# pixels (GMM) and reach the consistency term (conf_thr).
TRAIN_CFG = dict(conf_thr=0.27)
LABELER_CFG = dict(
    type='DuPLPseudoLabeler',
    par=dict(dilations=(1, 2, 4, 8, 12, 24), num_iter=10),
    gmm=dict(min_pixels=10, min_mean_gap=0.0, gamma=0.5))

#: Golden term name -> the current code's name of the same term. The
#: golden file keeps the names of the commit it was made from (ac92b6c:
#: today's names).
TERM_NAMES: Dict[str, str] = {
    's1.loss_cls': 's1.loss_cls',
    's2.loss_cls': 's2.loss_cls',
    's1.loss_ptc': 's1.loss_ptc',
    's2.loss_ptc': 's2.loss_ptc',
    'loss_disc': 'loss_disc',
    's1.loss_seg': 's1.loss_seg',
    's2.loss_seg': 's2.loss_seg',
    's1.loss_consistency': 's1.loss_consistency',
    's2.loss_consistency': 's2.loss_consistency',
    'noise_ratio.s1': 'noise_ratio.s1',
    'noise_ratio.s2': 'noise_ratio.s2',
    'thr_high': 'image_threshold',
}


def enter_phase_c(model: torch.nn.Module, iteration: int,
                  high_thr: torch.Tensor) -> None:
    """Put ``model`` in the golden run's schedule state: phase C (seg
    labels from the final CAMs, GMM filter and consistency on) at
    ``iteration`` with per-class thresholds ``high_thr`` (C,).

    At the golden commit the hooks set model attributes (the switches and
    a ``high_thr`` buffer). Now the model's run-time state is set by
    ``follow_schedule`` from its ``DuPLSchedule``: a schedule whose phases
    all began by ``iteration`` and whose threshold descent has reached
    ``high_thr`` there gives the same state."""
    from mmseg_dupl.models.schedules import DuPLSchedule
    train_cfg = dict(
        model.train_cfg,
        phases=dict(cam=0, gmm=0, end=iteration),
        thresholds=dict(
            high=float(high_thr.max()),
            high_target=high_thr.tolist(),
            low=model.train_cfg['thresholds']['low']))
    model.schedule = DuPLSchedule.from_train_cfg(train_cfg, len(high_thr))
    state = model.schedule.state(iteration)
    assert state.label_source == 'cam' and state.gmm_filter
    assert state.consistency and state.weights['seg'] > 0
    assert torch.equal(state.class_thresholds, high_thr.float())
    model.follow_schedule(iteration)


def build_model(state_dict=None) -> torch.nn.Module:
    """The tiny two-student segmentor in train mode; ``state_dict``
    replaces the random initial parameters."""
    from mmseg.registry import MODELS

    from dupl_test_utils import init_weights_quietly, tiny_model_cfg
    torch.manual_seed(SEED)
    model = MODELS.build(
        tiny_model_cfg(pseudo_labeler=LABELER_CFG, **TRAIN_CFG))
    init_weights_quietly(model)
    if state_dict is not None:
        # The golden commit kept tau_c in a `high_thr` buffer; the state
        # lives outside the weights now (enter_phase_c sets it).
        state_dict = {k: v for k, v in state_dict.items() if k != 'high_thr'}
        model.load_state_dict(state_dict, strict=True)
    return model.train()


def _batch_to_plain(batch: dict) -> dict:
    """The preprocessed batch as tensors and metainfo dicts."""
    return dict(
        inputs={k: v.clone() for k, v in batch['inputs'].items()},
        metainfo={
            k: [dict(s.metainfo) for s in v]
            for k, v in batch['data_samples'].items()
        })


def batch_from_plain(plain: dict) -> dict:
    """Rebuild ``model(**batch, mode='loss')`` arguments."""
    from mmseg.structures import SegDataSample
    return dict(
        inputs={k: v.clone() for k, v in plain['inputs'].items()},
        data_samples={
            k: [SegDataSample(metainfo=m) for m in v]
            for k, v in plain['metainfo'].items()
        })


def run_loss_and_grads(model: torch.nn.Module, batch: dict):
    """``loss()`` terms (detached float64 scalars) and the gradients of
    the summed loss (``parse_losses``) for every trainable parameter."""
    model.zero_grad(set_to_none=True)
    losses = model(**batch, mode='loss')
    total, _ = model.parse_losses(losses)
    total.backward()
    terms = {k: v.detach().double() for k, v in losses.items()}
    # The share of foreground labels the GMM filter removed, per student
    # (a loss-dict entry at the golden commit, logged by the hook now).
    for k, fit in enumerate(model.last_noise_fits or (), start=1):
        terms[f'noise_ratio.s{k}'] = torch.tensor(
            fit.stats()['removed'], dtype=torch.float64)
    grads = {
        name: p.grad.detach().clone()
        for name, p in model.named_parameters() if p.grad is not None
    }
    return terms, grads


def mismatches(golden: dict, terms: dict, grads: dict,
               rtol: float = 1e-5) -> List[str]:
    """What differs from the golden record beyond ``rtol`` (relative;
    for gradients relative to each tensor's largest element, since the
    elements near 0 carry the rounding of the larger ones)."""
    found = []
    if set(terms) != {TERM_NAMES[k] for k in golden['terms']}:
        found.append(f'loss terms differ: {sorted(terms)}; update '
                     'TERM_NAMES deliberately')
    for old, value in golden['terms'].items():
        new = terms.get(TERM_NAMES[old])
        if new is None or not torch.allclose(new, value, rtol, 0):
            found.append(f'{old}: golden {float(value):.8g}, now {new}')
    if set(grads) != set(golden['grads']):
        found.append('parameters with gradients differ: '
                     f'{sorted(set(grads) ^ set(golden["grads"]))}')
    for name, expected in golden['grads'].items():
        atol = rtol * float(expected.abs().max())
        if name in grads and not torch.allclose(grads[name], expected, rtol,
                                                atol):
            err = float((grads[name] - expected).abs().max())
            found.append(f'grad of {name}: max abs diff {err:.3g} '
                         f'(scale {atol / rtol:.3g})')
    return found


def make_golden() -> dict:
    """Run the golden iteration on the installed code; return the record."""
    import mmseg_dupl  # noqa: F401
    from dupl_test_utils import make_batch
    model = build_model()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    plain = _batch_to_plain(make_batch(batch=BATCH, size=SIZE, seed=SEED))
    high_thr = torch.tensor(HIGH_THR)
    enter_phase_c(model, ITER, high_thr)
    terms, grads = run_loss_and_grads(model, batch_from_plain(plain))
    return dict(
        state_dict=state,
        batch=plain,
        iteration=ITER,
        high_thr=high_thr,
        train_cfg=TRAIN_CFG,
        pseudo_labeler=LABELER_CFG,
        terms=terms,
        grads=grads,
        versions=dict(torch=torch.__version__, numpy=np.__version__))


def _generate_at_rev(rev: str, out: str) -> None:
    """Run this script inside a clean copy of commit ``rev`` (git
    archive; PYTHONPATH pointing at it): the commit's code and test
    utilities, this file's recipe."""
    repo = osp.dirname(TESTS)
    rev = subprocess.run(['git', 'rev-parse', rev], cwd=repo, check=True,
                         capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(['git', 'archive', rev], cwd=repo,
                                 check=True, capture_output=True).stdout
        subprocess.run(['tar', '-x', '-C', tmp], input=archive, check=True)
        script = osp.join(tmp, 'tests', '_golden_recipe.py')
        shutil.copy(osp.abspath(__file__), script)
        env = dict(os.environ, PYTHONPATH=tmp)
        subprocess.run([sys.executable, script, '--out', osp.abspath(out),
                        '--rev-label', rev], env=env, check=True, cwd=tmp)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', default=GOLDEN_FILE)
    parser.add_argument('--rev', default=None,
                        help='make it from this commit instead of the tree')
    parser.add_argument('--rev-label', default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rev:
        _generate_at_rev(args.rev, args.out)
        return
    torch.set_num_threads(1)
    from mmengine.registry import init_default_scope
    init_default_scope('mmseg')
    record = make_golden()
    record['rev'] = args.rev_label or 'working tree'
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    torch.save(record, args.out)
    print(f'wrote {args.out} from {record["rev"]}: '
          f'{len(record["terms"])} terms, {len(record["grads"])} grads')


if __name__ == '__main__':
    sys.path.insert(0, TESTS)
    main()
