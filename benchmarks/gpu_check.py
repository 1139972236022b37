# Copyright (c) OpenMMLab. All rights reserved.
"""GPU check (run through ``benchmarks/gpu_check.sh``): DeiT-B/448 DuPL
training iterations on one GPU at the paper's effective batch of 4
(``loss_group_size=1``: the 4-GPU loss pooling inside one process), fp32
and bf16 AMP; the GMM noise filter on the device against sklearn; the
projected wall time of the 20k VOC schedule; peak GPU memory.

Per precision, each phase of the schedule is timed on synthetic batches
(random init, ``init_cfg=None``): A (CAM/PTC only), B (+ seg pseudo labels
and PAR), C (+ GMM filter and consistency). The projection weights them by
the config's phase lengths (``cam_iters``, ``gmm_iters``, ``max_iters``);
it leaves out data loading (dataloader workers overlap it), validation and
checkpoints.

``--device cpu --config toy --crop 64 --batch 2`` is the CPU twin of the
same code, small enough for the test suite.
"""
import argparse
import os.path as osp
import statistics
import sys
import time

import torch

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import bench_train_step as bts  # noqa: E402
from common import REPO, append_section, machine_info  # noqa: E402



def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def _peak_mib(device: torch.device) -> float:
    if device.type != 'cuda':
        return float('nan')
    return torch.cuda.max_memory_allocated(device) / 2**20


def build(args, precision: str, device: torch.device):
    """The config's model (``loss_group_size=1``) and optimizer wrapper
    (AMP bf16 or plain fp32) on ``device``."""
    from mmengine.optim import build_optim_wrapper
    from mmseg.registry import MODELS
    cfg, spec = bts._load_cfg(args.config)
    spec = dict(spec, batch=args.batch, crop=args.crop or spec['crop'])
    cfg.model.train_cfg.loss_group_size = 1
    if precision == 'bf16':
        amp = 'AmpOptimWrapper' if device.type == 'cuda' else \
            'AutocastOptimWrapper'
        cfg.optim_wrapper.type = amp
        cfg.optim_wrapper.dtype = 'bfloat16'
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).to(device).train()
    return cfg, spec, model, build_optim_wrapper(model, cfg.optim_wrapper)


def step(model, optim_wrapper, batch: dict) -> None:
    """One training iteration as mmengine's ``train_step`` runs it."""
    with optim_wrapper.optim_context(model):
        data = model.data_preprocessor(batch, True)
        losses = model(**data, mode='loss')
    loss, _ = model.parse_losses(losses)
    optim_wrapper.update_params(loss)


def time_phases(args, precision: str, device: torch.device) -> dict:
    """Median seconds per iteration of each phase, and peak memory."""
    cfg, spec, model, optim_wrapper = build(args, precision, device)
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)
    # The model follows its DuPLSchedule at the iteration it is given, so
    # one iteration inside each phase selects it.
    schedule = cfg.model.train_cfg.phases
    cam_iters, gmm_iters = schedule['cam'], schedule['gmm']
    max_iters = cfg.train_cfg.max_iters
    out = dict(schedule=(cam_iters, gmm_iters, max_iters))
    phases = (('A', cam_iters // 2), ('B', (cam_iters + gmm_iters) // 2),
              ('C', (gmm_iters + max_iters) // 2))
    for name, iteration in phases:
        model.follow_schedule(iteration)
        times = []
        for i in range(args.warmup + args.iters):
            batch = bts._synthetic_batch(spec, cfg.model.num_classes, i)
            _sync(device)
            start = time.perf_counter()
            step(model, optim_wrapper, batch)
            _sync(device)
            if i >= args.warmup:
                times.append(time.perf_counter() - start)
        out[name] = statistics.median(times)
        print(f'{precision} phase {name}: {out[name]:.3f} s/iter (median '
              f'of {len(times)})', flush=True)
    out['peak_mib'] = _peak_mib(device)
    return out


def projected_hours(res: dict) -> float:
    cam_iters, gmm_iters, max_iters = res['schedule']
    seconds = (cam_iters * res['A'] + (gmm_iters - cam_iters) * res['B'] +
               (max_iters - gmm_iters) * res['C'])
    return seconds / 3600


def check_gmm(device: torch.device, repeats: int) -> str:
    """The batched GMM filter on ``device`` against the official sklearn
    loop (bench_gmm's synthetic 4 images x 2 students at 448)."""
    import bench_gmm
    from mmseg_dupl.models.noise_filter.gmm import gmm_noise_mask
    losses, labels = bench_gmm.synthetic_batch(0)
    start = time.perf_counter()
    reference = bench_gmm.sklearn_noise_mask(losses, labels)
    sk_time = time.perf_counter() - start
    losses_d, labels_d = losses.to(device), labels.to(device)
    times = []
    for _ in range(repeats + 1):
        _sync(device)
        start = time.perf_counter()
        noisy = gmm_noise_mask(losses_d, labels_d)
        _sync(device)
        times.append(time.perf_counter() - start)
    agree = (noisy.cpu() == reference).float().mean().item()
    ours = statistics.median(times[1:])
    return (f'GMM filter, {tuple(losses.shape)} maps: {ours * 1e3:.1f} ms on '
            f'{device} (median of {repeats}) vs sklearn {sk_time * 1e3:.0f} '
            f'ms on the CPU ({sk_time / ours:.0f}x); noise-mask agreement '
            f'{agree:.6%}')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', default='cuda')
    parser.add_argument('--config', default='deit', choices=sorted(
        bts.CONFIGS))
    parser.add_argument('--batch', type=int, default=4)
    parser.add_argument('--crop', type=int, default=None)
    parser.add_argument('--iters', type=int, default=8)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--write', action='store_true',
                        help='append the figures to benchmarks/RESULTS.md')
    args = parser.parse_args()
    from mmengine.registry import init_default_scope
    init_default_scope('mmseg')
    import mmseg_dupl  # noqa: F401
    device = torch.device(args.device)
    info = machine_info()
    lines = [f'device: {torch.cuda.get_device_name(device)}'
             if device.type == 'cuda' else f'device: {device} (CPU twin)']
    print(lines[0], flush=True)
    for precision in ('fp32', 'bf16'):
        res = time_phases(args, precision, device)
        cam_iters, gmm_iters, max_iters = res['schedule']
        lines.append(
            f'{precision}: phase A {res["A"]:.3f}, B {res["B"]:.3f}, C '
            f'{res["C"]:.3f} s/iter (batch {args.batch}, '
            f'loss_group_size=1); projected {max_iters} iterations '
            f'({cam_iters} A, {gmm_iters - cam_iters} B, '
            f'{max_iters - gmm_iters} C): {projected_hours(res):.2f} h; '
            + (f'peak GPU memory {res["peak_mib"]:.0f} MiB'
               if device.type == 'cuda' else 'no GPU memory on the CPU'))
        print(lines[-1], flush=True)
    lines.append(check_gmm(device, repeats=max(args.iters, 3)))
    print(lines[-1], flush=True)
    if args.write:
        append_section(f'GPU check ({args.config}, {args.device})',
                       '\n'.join(f'- {line}' for line in lines), info)


if __name__ == '__main__':
    sys.path.insert(0, REPO)
    main()
