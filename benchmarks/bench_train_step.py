# Copyright (c) OpenMMLab. All rights reserved.
"""Time of one DuPL training iteration on the CPU, split by stage, against
supervised training of the same network, with peak memory.

Configs: ``toy`` (configs/dupl_vit-tiny_toy.py, batch 4 at 128, toy data),
``deit-tiny`` (configs/dupl_vit-b_voc.py with DeiT-tiny/16 students, batch
2 at 224, synthetic batches) and ``deit`` (configs/dupl_vit-b_voc.py,
DeiT-B/16 at 448, batch 1, synthetic 448 batches); ``init_cfg=None`` (random
init, no download). All stages are on: the iteration is a phase-C one (seg
labels, GMM filter, consistency).

Each measurement runs in its own process (peak RSS = ``ru_maxrss``):

- ``dupl``: the stages of ``DualStudentSegmentor.loss`` (timers wrapped
  around ``multi_scale_cam``, ``refine_cams_with_dynamic_thres`` and
  ``DuPLPseudoLabeler.noise_masks``), the rest of the forward, backward
  + AdamW step;
  plus the official loop's discarded ``need_sp`` forward (both students
  on the 2B concatenation of weak and strong views, algorithm.md §2.4), which
  this
  segmentor does not run.
- ``supervised``: mmseg ``EncoderDecoder`` with the same backbone and
  LargeFOV head, trained with pixel labels (CE), same batch and optimizer.
- ``data``: the training dataloader (the config's pipeline on the toy
  images, ``num_workers=0``) plus the data preprocessor, per batch.

``--compare REV`` instead times the ``dupl`` iteration of this tree and of
commit REV side by side, alternating in one process pair
(``compare_revs.py``), and reports the ratio. ``--profile`` prints a
``torch.profiler`` table of one iteration (top operators by self time).

    .venv/bin/python benchmarks/bench_train_step.py --config toy
    .venv/bin/python benchmarks/bench_train_step.py --config deit
    .venv/bin/python benchmarks/bench_train_step.py --config deit-tiny \
        --compare fa94434 --iters 8
"""
import argparse
import copy
import json
import os
import sys
import time
from collections import defaultdict
from typing import Callable, Dict, List, Tuple

import numpy as np
import torch
import torch.nn.functional as F
import compare_revs
from common import (REPO, append_section, machine_info, markdown_table,
                    median, peak_rss_mib, run_child, set_threads)

CONFIGS = {
    'toy': dict(
        file='configs/dupl_vit-tiny_toy.py', batch=4, crop=128,
        phase_c_iter=400, warmup=1, iters=5),
    'deit-tiny': dict(
        file='configs/dupl_vit-b_voc.py', batch=2, crop=224,
        phase_c_iter=10000, warmup=1, iters=5,
        arch=dict(name='deit-tiny', embed_dims=192)),
    'deit': dict(
        file='configs/dupl_vit-b_voc.py', batch=1, crop=448,
        phase_c_iter=10000, warmup=0, iters=1),
}
TOY_DATA = 'data/toy_voc'
STAGES = ('cam', 'pseudo labels (PAR)', 'gmm filter', 'forward (rest)',
          'backward + step')

# ---------------------------------------------------------------------------
# building blocks (run in the child processes)
# ---------------------------------------------------------------------------


def _load_cfg(name: str, tree: str = REPO):
    """The config of ``tree`` (this repository or a compared commit)."""
    from mmengine.config import Config
    spec = CONFIGS[name]
    cfg = Config.fromfile(f'{tree}/{spec["file"]}')
    student = cfg.model.student
    student.backbone.init_cfg = None  # no weights download
    if 'arch' in spec:  # smaller students in the same config
        student.backbone.arch = spec['arch']['name']
        student.in_channels = student.decode_head.in_channels = \
            spec['arch']['embed_dims']
    return cfg, spec


def _toy_data_cfg(cfg, spec):
    """The config's training dataloader on the toy images (for DeiT-B the
    VOC pipeline at 448 with the toy dataset's files and classes)."""
    from mmengine.config import Config
    toy = Config.fromfile(f'{REPO}/{CONFIGS["toy"]["file"]}')
    loader = copy.deepcopy(toy.train_dataloader)
    loader.dataset.data_root = f'{REPO}/{TOY_DATA}'
    loader.dataset.pipeline = cfg.train_dataloader.dataset.pipeline
    loader.update(batch_size=spec['batch'], num_workers=0,
                  persistent_workers=False)
    return loader


def _synthetic_batch(spec: dict, num_classes: int, seed: int) -> dict:
    """A raw (uint8) multi-branch batch as the dataloader gives it: weak
    crop, 0.75x strong view, image labels, full img_box, the strong
    view's flip-and-scale homography."""
    from mmseg.structures import SegDataSample
    g = torch.Generator().manual_seed(seed)
    size, strong = spec['crop'], int(spec['crop'] * 0.75)
    flip = np.array([[-1, 0, size], [0, 1, 0], [0, 0, 1]], np.float32)
    homography = np.diag([0.75, 0.75, 1]).astype(np.float32) @ flip
    batch = {'inputs': {'weak': [], 'strong': []},
             'data_samples': {'weak': [], 'strong': []}}
    for i in range(spec['batch']):
        cls = np.zeros(num_classes, np.float32)
        cls[[(seed + i) % num_classes, (seed + 7 * i + 3) % num_classes]] = 1
        for branch, hw, h in (('weak', size, np.eye(3, dtype=np.float32)),
                              ('strong', strong, homography)):
            batch['inputs'][branch].append(
                torch.randint(0, 256, (3, hw, hw), generator=g,
                              dtype=torch.uint8))
            batch['data_samples'][branch].append(SegDataSample(metainfo=dict(
                cls_labels=cls, img_box=np.array([0, size, 0, size]),
                homography_matrix=h, img_shape=(hw, hw),
                ori_shape=(hw, hw))))
    return batch


def _batches(cfg, spec, name: str):
    """Endless training batches: toy data for ``toy``, synthetic for
    ``deit``."""
    if name == 'toy':
        from mmengine.runner import Runner
        loader = Runner.build_dataloader(_toy_data_cfg(cfg, spec), seed=0)
        while True:
            yield from loader
    seed = 0
    while True:
        seed += 1
        yield _synthetic_batch(spec, cfg.model.num_classes, seed)


class StageTimer:
    """Accumulates wall time of wrapped callables per stage name."""

    def __init__(self) -> None:
        self.times: Dict[str, float] = defaultdict(float)

    def reset(self) -> None:
        self.times.clear()

    def wrap(self, name: str, fn: Callable) -> Callable:

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.times[name] += time.perf_counter() - start

        return timed


def _build_dupl(cfg, phase_c_iter: int):
    from mmengine.optim import build_optim_wrapper
    from mmseg.registry import MODELS
    model = MODELS.build(cfg.model)
    model.train()
    model.follow_schedule(phase_c_iter)
    return model, build_optim_wrapper(model, cfg.optim_wrapper)


def _install_stage_timers(timer: StageTimer) -> None:
    from mmseg_dupl.models.pseudo_labelers import dupl_pseudo_labeler as pl
    from mmseg_dupl.models.segmentors import dual_student_segmentor as seg
    seg.multi_scale_cam = timer.wrap('cam', seg.multi_scale_cam)
    pl.refine_cams_with_dynamic_thres = timer.wrap(
        'pseudo labels (PAR)', pl.refine_cams_with_dynamic_thres)
    cls = pl.DuPLPseudoLabeler
    cls.noise_masks = timer.wrap('gmm filter', cls.noise_masks)


def _dupl_step(model, optim_wrapper, batch: dict,
               timer: StageTimer) -> Tuple[Dict[str, float], dict]:
    """One training iteration: its stage times (s) and its inputs."""
    timer.reset()
    data = model.data_preprocessor(batch, True)
    cpu_start = time.process_time()
    start = time.perf_counter()
    losses = model(**data, mode='loss')
    loss, _ = model.parse_losses(losses)
    mid = time.perf_counter()
    optim_wrapper.update_params(loss)
    end = time.perf_counter()
    times = dict(timer.times)
    # CPU time of this process: what the iteration costs, much less
    # moved than wall time by other jobs on a shared machine
    times['cpu'] = time.process_time() - cpu_start
    times['loss'] = loss.item()
    times['forward (rest)'] = mid - start - sum(
        v for k, v in times.items() if k in STAGES)
    times['backward + step'] = end - mid
    times['total'] = end - start
    return times, data


def _need_sp_forward(model, data: dict) -> float:
    """The official ``need_sp`` pass whose results are discarded: both
    students on cat[weak, strong resized back to the weak size] (2B)."""
    weak, strong = data['inputs']['weak'], data['inputs']['strong']
    strong = F.interpolate(strong, size=weak.shape[2:], mode='bilinear',
                           align_corners=False)
    start = time.perf_counter()
    for student in model.students:
        student(torch.cat([weak, strong]))
    return time.perf_counter() - start


def _cheap_warmup(model, optim_wrapper, batch: dict) -> None:
    """Instead of a whole warm-up iteration (a minute for DeiT-B): one
    forward/backward of both students on both views and an AdamW step,
    which allocates the optimizer state and warms the backward kernels
    (the weights are random anyway)."""
    data = model.data_preprocessor(batch, True)
    loss = 0.
    for student in model.students:
        out = student(data['inputs']['weak'])
        loss = loss + out['seg'].mean() + out['cls'].mean() + \
            out['cls_aux'].mean() + student.seg_logits(
                data['inputs']['strong']).mean()
    optim_wrapper.update_params(loss * 0)


def child_dupl(name: str, iters: int, warmup: int) -> dict:
    """DuPL phase-C iterations, each on a new batch."""
    cfg, spec = _load_cfg(name)
    model, optim_wrapper = _build_dupl(cfg, spec['phase_c_iter'])
    rss_built = peak_rss_mib()
    timer = StageTimer()
    batches = _batches(cfg, spec, name)
    _install_stage_timers(timer)
    if warmup == 0:
        _cheap_warmup(model, optim_wrapper, next(batches))
    steps, need_sp = [], []
    for i in range(warmup + iters):
        times, data = _dupl_step(model, optim_wrapper, next(batches), timer)
        if i >= warmup:
            steps.append(times)
            need_sp.append(_need_sp_forward(model, data))
    return dict(steps=steps, need_sp=need_sp, rss_built=rss_built,
                rss_peak=peak_rss_mib())


def serve_dupl(name: str, tree: str, warmup: int):
    """For ``--compare``: a model of ``tree`` built from seed 0 (torch,
    numpy and random: the same weights and batches in both trees), warmed
    up. Returns ``(step, first_loss)``: ``step(i)`` runs the next batch's
    iteration and returns its stage times; ``first_loss`` is the total
    loss of the first warm-up iteration (the same model and batch in
    both trees, before any optimizer step: the numerics check)."""
    from mmengine.runner import set_random_seed
    set_random_seed(0)
    cfg, spec = _load_cfg(name, tree)
    model, optim_wrapper = _build_dupl(cfg, spec['phase_c_iter'])
    timer = StageTimer()
    _install_stage_timers(timer)
    batches = _batches(cfg, spec, name)
    first_loss = _dupl_step(model, optim_wrapper, next(batches),
                            timer)[0]['loss']
    for _ in range(warmup - 1):
        _dupl_step(model, optim_wrapper, next(batches), timer)
    return (lambda index: _dupl_step(model, optim_wrapper, next(batches),
                                     timer)[0]), first_loss


def profile_dupl(name: str, warmup: int, rows: int = 30) -> str:
    """``torch.profiler`` table (top operators by self CPU time) of one
    phase-C iteration after ``warmup`` ones."""
    from torch.profiler import ProfilerActivity, profile
    step, _ = serve_dupl(name, REPO, warmup)
    with profile(activities=[ProfilerActivity.CPU],
                 record_shapes=True) as prof:
        times = step(0)
    table = prof.key_averages(group_by_input_shape=True).table(
        sort_by='self_cpu_time_total', row_limit=rows)
    stages = ', '.join(f'{k} {v:.3f} s' for k, v in times.items()
                       if k != 'loss')
    return f'stages (under the profiler): {stages}\n{table}'


# --- supervised baseline and data loading ----------------------------------


def _supervised_model(cfg, spec: dict):
    """EncoderDecoder with the DuPL student's backbone and LargeFOV head
    (cross-entropy on pixel labels)."""
    from mmseg.registry import MODELS
    student = cfg.model.student
    preprocessor = copy.deepcopy(cfg.model.data_preprocessor.data_preprocessor)
    crop = spec['crop']
    preprocessor.size = (crop, crop)
    return MODELS.build(dict(
        type='EncoderDecoder', data_preprocessor=preprocessor,
        backbone=student.backbone, decode_head=student.decode_head,
        train_cfg=dict(), test_cfg=dict(mode='whole')))


def _supervised_batch(spec: dict, num_classes: int, seed: int) -> dict:
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    g = torch.Generator().manual_seed(seed)
    size = spec['crop']
    inputs, samples = [], []
    for _ in range(spec['batch']):
        inputs.append(torch.randint(0, 256, (3, size, size), generator=g,
                                    dtype=torch.uint8))
        label = torch.randint(0, num_classes + 1, (1, size, size),
                              generator=g)
        sample = SegDataSample(metainfo=dict(img_shape=(size, size),
                                             ori_shape=(size, size)))
        sample.gt_sem_seg = PixelData(data=label)
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def child_supervised(name: str, iters: int, warmup: int) -> dict:
    from mmengine.optim import build_optim_wrapper
    cfg, spec = _load_cfg(name)
    model = _supervised_model(cfg, spec)
    model.train()
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    rss_built = peak_rss_mib()
    steps = []
    warmup = max(warmup, 1)  # cheap next to DuPL: always warm up
    for i in range(warmup + iters):
        data = model.data_preprocessor(
            _supervised_batch(spec, cfg.model.num_classes, i), True)
        start = time.perf_counter()
        losses = model(**data, mode='loss')
        loss, _ = model.parse_losses(losses)
        mid = time.perf_counter()
        optim_wrapper.update_params(loss)
        end = time.perf_counter()
        if i >= warmup:
            steps.append({'forward': mid - start,
                          'backward + step': end - mid, 'total': end - start})
    return dict(steps=steps, rss_built=rss_built, rss_peak=peak_rss_mib())


def child_data(name: str, iters: int, warmup: int) -> dict:
    from mmengine.runner import Runner
    from mmseg.registry import MODELS
    cfg, spec = _load_cfg(name)
    preprocessor = MODELS.build(cfg.model.data_preprocessor)
    loader = Runner.build_dataloader(_toy_data_cfg(cfg, spec), seed=0)
    times, it = [], iter(loader)
    for i in range(warmup + max(iters, 5)):
        start = time.perf_counter()
        preprocessor(next(it), True)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return dict(times=times)


CHILDREN = dict(dupl=child_dupl,
                supervised=child_supervised, data=child_data)

# ---------------------------------------------------------------------------
# the report (parent process)
# ---------------------------------------------------------------------------


def _med(steps: List[dict], key: str) -> float:
    return median([s.get(key, 0.) for s in steps])


def report(name: str, res: dict, iters: int, warmup: int) -> str:
    dupl, sup = res['dupl'], res['supervised']
    steps = dupl['steps']
    data = median(res['data']['times'])
    total = _med(steps, 'total')
    rows = [[stage, f'{_med(steps, stage):.3f}',
             f'{_med(steps, stage) / (total + data):.1%}']
            for stage in STAGES]
    rows.append(['data loading + preprocessing (toy images)', f'{data:.3f}',
                 f'{data / (total + data):.1%}'])
    rows.append(['**iteration**', f'**{total + data:.3f}**', '100%'])
    sup_total = _med(sup['steps'], 'total')
    need_sp = median(dupl['need_sp'])
    mem = markdown_table(
        ['process', 'RSS after build (MiB)', 'peak RSS (MiB)'],
        [[label, f'{res[k]["rss_built"]:.0f}', f'{res[k]["rss_peak"]:.0f}']
         for k, label in (('dupl', 'DuPL'),
                          ('supervised', 'supervised EncoderDecoder'))])
    return (
        f'{_describe(name)}, {iters} timed iteration(s) after '
        + (f'{warmup} warm-up' if warmup else 'a warm-up forward/backward/'
           'AdamW step') + ', medians. Seconds per iteration:\n\n' +
        markdown_table(['stage', 'DuPL (s)', 'share'], rows) +
        f'\n\n- Supervised `EncoderDecoder` (same backbone + LargeFOV head, '
        f'pixel-label CE, same batch and optimizer): {sup_total:.3f} s '
        f'(forward {_med(sup["steps"], "forward"):.3f}, backward + step '
        f'{_med(sup["steps"], "backward + step"):.3f}). The DuPL model step '
        f'costs {total / sup_total:.1f}x a supervised one (two students, '
        'CAMs, pseudo labels, GMM, consistency).\n'
        f'- Official `need_sp` discarded double forward (both students on '
        f'2B images, phase C), not run by this segmentor: {need_sp:.3f} s '
        f'per iteration, {need_sp / total:.1%} of the model step.\n\n'
        'Peak memory (resident set of each measuring process, imports '
        f'included):\n\n{mem}')


def _describe(name: str) -> str:
    spec = CONFIGS[name]
    arch = f' with {spec["arch"]["name"]} students' if 'arch' in spec \
        else ''
    return (f'`{spec["file"]}`{arch}, batch {spec["batch"]} at '
            f'{spec["crop"]}x{spec["crop"]} (strong view '
            f'{int(spec["crop"] * .75)}), phase C (every stage on), random '
            f'init, {torch.get_num_threads()} torch thread(s)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config', choices=sorted(CONFIGS), default='toy')
    parser.add_argument('--iters', type=int, default=None)
    parser.add_argument('--warmup', type=int, default=None)
    parser.add_argument('--threads', type=int, default=1,
                        help="torch threads (0 keeps torch's default)")
    parser.add_argument('--child', choices=sorted(CHILDREN) + ['serve'],
                        default=None,
                        help=argparse.SUPPRESS)
    parser.add_argument('--no-write', action='store_true')
    parser.add_argument('--compare', metavar='REV', default=None,
                        help='time this tree against commit REV, '
                        'alternating in one process pair')
    parser.add_argument('--profile', action='store_true',
                        help='print a torch.profiler table of one '
                        'iteration')
    parser.add_argument('--tree', default=REPO, help=argparse.SUPPRESS)
    args = parser.parse_args()
    set_threads(args.threads)
    spec = CONFIGS[args.config]
    iters = spec['iters'] if args.iters is None else args.iters
    warmup = spec['warmup'] if args.warmup is None else args.warmup
    if args.child or args.profile:
        from mmengine.registry import init_default_scope
        init_default_scope('mmseg')
    if args.child == 'serve':  # one tree of a --compare pair
        sys.path.insert(0, args.tree)
        compare_revs.serve(
            lambda: serve_dupl(args.config, args.tree, max(warmup, 1)),
            args.tree)
        return
    if args.child or args.profile:
        import mmseg_dupl  # noqa: F401
    if args.child:
        print(json.dumps(CHILDREN[args.child](args.config, iters, warmup)))
        return
    if args.profile:
        print(profile_dupl(args.config, max(warmup, 1)))
        return
    if args.compare:
        _main_compare(args, iters)
        return
    info = machine_info()
    base = [sys.argv[0], '--config', args.config, '--threads',
            str(args.threads), '--iters', str(iters), '--warmup',
            str(warmup)]
    res = {}
    for child in ('data', 'supervised', 'dupl'):
        start = time.perf_counter()
        res[child] = run_child(base + ['--child', child])
        print(f'{child}: {time.perf_counter() - start:.0f} s',
              file=sys.stderr)
    body = report(args.config, res, iters, warmup)
    print(body)
    if not args.no_write:
        append_section(f'Training iteration, {args.config} config', body,
                       info)


def _main_compare(args, iters: int) -> None:
    """``--compare REV``: alternating A/B iterations, ratio, RESULTS.md."""
    info = machine_info()
    load_before = info['load average (1, 5, 15 min) at start']
    child_args = ['--config', args.config, '--threads', str(args.threads)]
    res = compare_revs.compare(args.compare, child_args, iters)
    load_after = ', '.join(f'{v:.2f}' for v in os.getloadavg())
    body = compare_revs.report(res, _describe(args.config), list(STAGES))
    body += (f'\n\nLoad average (1, 5, 15 min): {load_before} before, '
             f'{load_after} after.')
    print(body)
    if not args.no_write:
        append_section(
            f'A/B: this tree vs {args.compare}, {args.config} config', body,
            info)


if __name__ == '__main__':
    main()
