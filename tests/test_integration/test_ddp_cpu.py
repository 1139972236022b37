# Copyright (c) OpenMMLab. All rights reserved.
"""Two-process DDP training on the CPU (gloo) through tools/dist_train.sh.

The run crosses all three phases (so parameters without gradients in the
early phases must not break DDP). Checked:

- both ranks end with bit-identical weights;
- the DDP gradient (each rank pools its ratio losses over its own 2 images,
  DDP averages) equals, in one process, the gradient of the same model on
  the two ranks' batches concatenated with ``loss_group_size=2`` (algorithm.md
  §9:
  the per-GPU loss normalisation), and differs from the 4-image pooled one.
"""
import contextlib
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from conftest import REPO, TOY_CONFIG, toy_train_options
from mmengine.config import Config
from mmseg.registry import MODELS
from stock_config_utils import free_port

import mmseg_dupl  # noqa: F401

MAX_ITERS = 8
PROBE_ITER = 6  # phase C: GMM filter and consistency loss both on
TESTS_DIR = osp.dirname(osp.dirname(osp.abspath(__file__)))
# Schedule of the short run: seg labels from 2 (weighted from 3), GMM
# filter from 4, consistency from 5 (toy_train_options' cam and gmm).
PHASE_OPTIONS = [
    'param_scheduler.0.warmup_iters=2', 'train_dataloader.batch_size=2'
]


def _write_config(tmp_path, out_dir: str) -> str:
    """The toy config plus the probe hook, without validation."""
    hooks = [dict(h) for h in Config.fromfile(TOY_CONFIG).get(
        'custom_hooks', [])]
    hooks.append(
        dict(type='DDPProbeHook', probe_iter=PROBE_ITER, out_dir=out_dir))
    path = tmp_path / 'dupl_ddp_probe.py'
    path.write_text(
        f'_base_ = [{TOY_CONFIG!r}]\n'
        'custom_imports = dict(imports=["mmseg_dupl", "mmpretrain.models", '
        '"ddp_probe_hook"], allow_failed_imports=False)\n'
        f'custom_hooks = {hooks!r}\n'
        'val_cfg = None\nval_dataloader = None\nval_evaluator = None\n')
    return str(path)


@pytest.fixture(scope='module')
def ddp_run(toy_data_root, tmp_path_factory) -> dict:
    tmp_path = tmp_path_factory.mktemp('ddp')
    work_dir = str(tmp_path / 'work')
    out_dir = str(tmp_path / 'dumps')
    options = [
        o for o in toy_train_options(
            toy_data_root, max_iters=MAX_ITERS, cam=2, gmm=4)
        if not o.startswith(('param_scheduler.0.warmup_iters',
                             'val_dataloader'))
    ] + PHASE_OPTIONS
    env = dict(
        os.environ,
        PYTHON=sys.executable,
        PORT=str(free_port()),
        OMP_NUM_THREADS='1',
        PYTHONPATH=os.pathsep.join(
            [TESTS_DIR, os.environ.get('PYTHONPATH', '')]))
    cmd = [
        'bash',
        osp.join(REPO, 'tools', 'dist_train.sh'),
        _write_config(tmp_path, out_dir), '2', '--work-dir', work_dir,
        '--cfg-options'
    ] + options
    proc = subprocess.run(
        cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return dict(
        out_dir=out_dir,
        config=osp.join(work_dir, 'dupl_ddp_probe.py'),
        log=proc.stdout + proc.stderr)


def _load(out_dir: str, name: str) -> list:
    return [
        torch.load(
            osp.join(out_dir, f'{name}_rank{r}.pth'),
            map_location='cpu',
            weights_only=False) for r in (0, 1)
    ]


def test_ranks_end_with_identical_weights(ddp_run):
    assert 'Distributed training is not used' not in ddp_run['log']
    first, second = _load(ddp_run['out_dir'], 'final')
    assert first.keys() == second.keys()
    for key in first:
        assert torch.equal(first[key], second[key]), key
    # The phase-B/C parameters did train: the decoders moved away from
    # the weights they had at the probe (one iteration earlier).
    probe = _load(ddp_run['out_dir'], 'probe')[0]
    head = 'student1.decode_head.conv_seg.weight'
    assert not torch.equal(first[head], probe['state_dict'][head])


def _concat(a, b):
    """Concatenate two collated data batches (dicts of lists)."""
    if isinstance(a, dict):
        return {k: _concat(a[k], b[k]) for k in a}
    return list(a) + list(b)


@contextlib.contextmanager
def _one_thread():
    """One intra-op thread: on a shared, loaded 2-core host, OpenMP
    barriers across two threads make PAR's gathers about 10x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _single_process_grads(config: str, probe: dict, batch: dict,
                          group_size) -> dict:
    """Gradients of the model of ``probe`` on ``batch`` in one process."""
    cfg = Config.fromfile(config)
    cfg.model.train_cfg.loss_group_size = group_size
    model = MODELS.build(cfg.model)
    model.load_state_dict(probe['state_dict'])
    model.follow_schedule(probe['iter'])
    with _one_thread():
        data = model.data_preprocessor(batch, True)
        losses = model(**data, mode='loss')
        loss, _ = model.parse_losses(losses)
        loss.backward()
    return {n: p.grad for n, p in model.named_parameters()}


def _max_rel_error(grads: dict, ref: dict) -> float:
    """Max over parameters of |g - ref| / max|ref| (both None is exact)."""
    worst = 0.
    for name, expected in ref.items():
        got = grads[name]
        assert (got is None) == (expected is None), name
        if expected is not None:
            scale = expected.abs().max().clamp(min=1e-12)
            worst = max(worst, float((got - expected).abs().max() / scale))
    return worst


def test_ddp_gradient_is_the_per_gpu_pooled_gradient(ddp_run):
    probes = _load(ddp_run['out_dir'], 'probe')
    assert probes[0]['iter'] == PROBE_ITER
    assert probes[0]['switches'] == dict(gmm_filter=True, consistency=True)
    for key, value in probes[0]['state_dict'].items():
        assert torch.equal(value, probes[1]['state_dict'][key]), key
    ddp_grads = probes[0]['grads']
    assert _max_rel_error(probes[1]['grads'], ddp_grads) == 0
    # The decoder is in the graph at the probe (seg and consistency on).
    assert ddp_grads['student1.decode_head.conv_seg.weight'] is not None
    batch = _concat(probes[0]['batch'], probes[1]['batch'])
    grouped = _single_process_grads(ddp_run['config'], probes[0], batch, 2)
    pooled = _single_process_grads(ddp_run['config'], probes[0], batch,
                                   None)
    grouped_error = _max_rel_error(grouped, ddp_grads)
    pooled_error = _max_rel_error(pooled, ddp_grads)
    print(f'max relative gradient error vs DDP: loss_group_size=2 '
          f'{grouped_error:.2e}, pooled over 4 images {pooled_error:.2e}')
    assert grouped_error < 1e-3
    assert pooled_error > 10 * grouped_error + 1e-3
