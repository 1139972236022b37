# Copyright (c) OpenMMLab. All rights reserved.
"""Time of one DuPL training iteration on the CPU, split by stage, against
supervised training of the same network, with peak memory.

Configs: ``toy`` (configs/dupl_vit-tiny_toy.py, batch 4 at 128, toy data)
and ``deit`` (configs/dupl_vit-b_voc.py, DeiT-B/16 at 448, batch 1,
``init_cfg=None``, synthetic 448 batches). All stages are on: the
iteration is a phase-C one (seg labels, GMM filter, consistency).

Each measurement runs in its own process (peak RSS = ``ru_maxrss``):

- ``dupl``: the stages of ``DualStudentSegmentor.loss`` (timers wrapped
  around ``multi_scale_cam``, ``refine_cams_with_dynamic_thres`` and
  ``DuPLPseudoLabeler.noise_masks``), the rest of the forward, backward
  + AdamW step;
  plus the official loop's discarded ``need_sp`` forward (both students
  on the 2B concatenation of weak and strong views, spec 2.4), which this
  segmentor does not run. Alternating with those iterations, the same
  iteration with the proposed reuse of the scale-1.0 CAM (monkeypatched
  here): the training forward runs first and its features give the
  un-flipped scale-1.0 CAMs, so ``multi_scale_cam`` runs the scale-1.0
  flipped half only; and the numerics check: max abs difference of the
  CAMs with and without reuse.
- ``supervised``: mmseg ``EncoderDecoder`` with the same backbone and
  LargeFOV head, trained with pixel labels (CE), same batch and optimizer.
- ``data``: the training dataloader (the config's pipeline on the toy
  images, ``num_workers=0``) plus the data preprocessor, per batch.

    .venv/bin/python benchmarks/bench_train_step.py --config toy
    .venv/bin/python benchmarks/bench_train_step.py --config deit
"""
import argparse
import contextlib
import copy
import json
import sys
import time
from collections import defaultdict
from typing import Callable, Dict, List, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from common import (REPO, append_section, machine_info, markdown_table,
                    median, peak_rss_mib, run_child, set_threads)

CONFIGS = {
    'toy': dict(
        file='configs/dupl_vit-tiny_toy.py', batch=4, crop=128,
        phase_c_iter=400, warmup=1, iters=5, numerics_students=2,
        numerics_scales=None),
    'deit': dict(
        file='configs/dupl_vit-b_voc.py', batch=1, crop=448,
        phase_c_iter=10000, warmup=0, iters=1, numerics_students=1,
        numerics_scales=(1.0, )),
}
TOY_DATA = 'data/toy_voc'
STAGES = ('cam', 'pseudo labels (PAR)', 'gmm filter', 'forward (rest)',
          'backward + step')

# ---------------------------------------------------------------------------
# building blocks (run in the child processes)
# ---------------------------------------------------------------------------


def _load_cfg(name: str):
    from mmengine.config import Config
    spec = CONFIGS[name]
    cfg = Config.fromfile(f'{REPO}/{spec["file"]}')
    cfg.model.student.backbone.init_cfg = None  # no weights download
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
        self.moved = 0.  # training forward run inside the CAM stage

    def reset(self) -> None:
        self.times.clear()
        self.moved = 0.

    def wrap(self, name: str, fn: Callable) -> Callable:

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.times[name] += time.perf_counter() - start

        return timed


def _build_dupl(cfg, phase_c_iter: int):
    from mmengine.logging import MessageHub
    from mmengine.optim import build_optim_wrapper
    from mmseg.registry import MODELS
    model = MODELS.build(cfg.model)
    model.train()
    MessageHub.get_current_instance().update_info('iter', phase_c_iter)
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
    start = time.perf_counter()
    losses = model(**data, mode='loss')
    loss, _ = model.parse_losses(losses)
    mid = time.perf_counter()
    optim_wrapper.update_params(loss)
    end = time.perf_counter()
    times = dict(timer.times)
    # With CAM reuse the training forward runs inside the CAM stage:
    # count it with the rest of the forward, as without reuse.
    times['cam'] -= timer.moved
    times['forward (rest)'] = mid - start - sum(times.values())
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


# --- the proposed scale-1.0 CAM reuse, monkeypatched -----------------------


def multi_scale_cam_reuse(cam_fn, inputs, scales, precomputed):
    """``multi_scale_cam`` with a ``precomputed`` argument: the raw
    ``(cam, cam_aux)`` of the un-flipped scale-1.0 inputs (B, C, h, w),
    e.g. ``student.cams_from_features`` of the training forward. Only
    ``flip(x)`` then goes through ``cam_fn`` at scale 1.0. The proposed
    change to ``models/utils/cam.py::multi_scale_cam``."""
    from mmseg_dupl.models.utils.cam import (merge_flipped_cam,
                                             normalize_cam,
                                             resize_for_scale)
    b, _, h, w = inputs.shape
    cams, cams_aux = [], []
    with torch.no_grad():
        for scale in scales:
            x = resize_for_scale(inputs, scale)
            if scale == 1.0 and precomputed is not None:
                flipped = cam_fn(x.flip(-1))
                cam, cam_aux = (torch.cat([p, f])
                                for p, f in zip(precomputed, flipped))
            else:
                cam, cam_aux = cam_fn(torch.cat([x, x.flip(-1)], dim=0))
            cams.append(merge_flipped_cam(cam, b, (h, w)))
            cams_aux.append(merge_flipped_cam(cam_aux, b, (h, w)))
        return (normalize_cam(torch.stack(cams).sum(0)),
                normalize_cam(torch.stack(cams_aux).sum(0)))


@contextlib.contextmanager
def scale1_cam_reuse(timer: StageTimer):
    """Within the block, each student's training forward runs first, inside
    the CAM stage (grad on), and is handed to the segmentor's ``s(weak)``
    call; its features give the scale-1.0 CAMs. What the segmentor change
    would do: forward first, then ``multi_scale_cam(..., precomputed=
    s.cams_from_features(feat_aux, feat))``, ``DuPLStudent.forward`` also
    returning ``feat_aux``."""
    from mmseg_dupl.models.segmentors import dual_student_segmentor as seg
    from mmseg_dupl.models.students.dupl_student import DuPLStudent
    saved = seg.multi_scale_cam, DuPLStudent.forward
    original_forward = DuPLStudent.forward
    cache = {}

    def forward_with_feats(student, inputs):
        feats = {}
        extract = student.extract_feat

        def capture(x):
            feats['out'] = extract(x)
            return feats['out']

        student.extract_feat = capture
        try:
            out = original_forward(student, inputs)
        finally:
            del student.extract_feat
        return out, feats['out']

    def forward(student, inputs, with_seg=True):
        entry = cache.pop(id(student), None)
        if entry is not None and entry[0] is inputs and with_seg:
            return entry[1]
        return original_forward(student, inputs, with_seg)

    def cams(cam_fn, inputs, scales):
        student = cam_fn.__self__
        start = time.perf_counter()
        out, (feat_aux, feat) = forward_with_feats(student, inputs)
        timer.moved += time.perf_counter() - start
        cache[id(student)] = (inputs, out)
        with torch.no_grad():
            pre = student.cams_from_features(feat_aux.detach(),
                                             feat.detach())
        return multi_scale_cam_reuse(cam_fn, inputs, scales, pre)

    seg.multi_scale_cam = timer.wrap('cam', cams)
    DuPLStudent.forward = forward
    try:
        yield
    finally:
        seg.multi_scale_cam, DuPLStudent.forward = saved


def _reuse_numerics(model, data: dict, students: int, scales) -> float:
    """Max abs difference of (cam, cam_aux) with and without reuse over
    the first ``students`` students, on one batch. ``scales`` defaults to
    the training ones; only scale 1.0 changes (the DeiT-B run checks that
    one alone, to stay short)."""
    from mmseg_dupl.models.utils.cam import multi_scale_cam
    weak = data['inputs']['weak']
    scales = scales or model.train_cfg['cam_scales']
    diffs = []
    with torch.no_grad():
        for student in model.students[:students]:
            ref = multi_scale_cam(student.cams, weak, scales)
            pre = student.cams_from_features(*student.extract_feat(weak))
            new = multi_scale_cam_reuse(student.cams, weak, scales, pre)
            diffs += [float((r - n).abs().max()) for r, n in zip(ref, new)]
    return max(diffs)


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
    """DuPL iterations with and without CAM reuse, alternating (reuse
    first, so any warm-up cost left falls on the reuse variant)."""
    cfg, spec = _load_cfg(name)
    model, optim_wrapper = _build_dupl(cfg, spec['phase_c_iter'])
    rss_built = peak_rss_mib()
    timer = StageTimer()
    batches = _batches(cfg, spec, name)
    max_abs_diff = _reuse_numerics(
        model, model.data_preprocessor(next(batches), True),
        spec['numerics_students'], spec['numerics_scales'])
    _install_stage_timers(timer)
    if warmup == 0:
        _cheap_warmup(model, optim_wrapper, next(batches))
    steps, reuse, need_sp = [], [], []
    for i in range(warmup + iters):
        batch = next(batches)  # the same batch for both variants
        with scale1_cam_reuse(timer):
            times, _ = _dupl_step(model, optim_wrapper, batch, timer)
        if i >= warmup:
            reuse.append(times)
        times, data = _dupl_step(model, optim_wrapper, batch, timer)
        if i >= warmup:
            steps.append(times)
            need_sp.append(_need_sp_forward(model, data))
    return dict(steps=steps, reuse=reuse, need_sp=need_sp,
                max_abs_diff=max_abs_diff, rss_built=rss_built,
                rss_peak=peak_rss_mib())


# --- supervised baseline and data loading ----------------------------------


def _supervised_model(cfg):
    """EncoderDecoder with the DuPL student's backbone and LargeFOV head
    (cross-entropy on pixel labels)."""
    from mmseg.registry import MODELS
    student = cfg.model.student
    preprocessor = copy.deepcopy(cfg.model.data_preprocessor.data_preprocessor)
    crop = CONFIGS['toy' if student.in_channels != 768 else 'deit']['crop']
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
    model = _supervised_model(cfg)
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
    spec = CONFIGS[name]
    dupl, sup = res['dupl'], res['supervised']
    steps, reuse = dupl['steps'], dupl['reuse']
    data = median(res['data']['times'])
    total, total_reuse = _med(steps, 'total'), _med(reuse, 'total')
    rows = [[stage, f'{_med(steps, stage):.3f}',
             f'{_med(steps, stage) / (total + data):.1%}',
             f'{_med(reuse, stage):.3f}'] for stage in STAGES]
    rows.append(['data loading + preprocessing (toy images)', f'{data:.3f}',
                 f'{data / (total + data):.1%}', f'{data:.3f}'])
    rows.append(['**iteration**', f'**{total + data:.3f}**', '100%',
                 f'**{total_reuse + data:.3f}**'])
    sup_total = _med(sup['steps'], 'total')
    need_sp = median(dupl['need_sp'])
    mem = markdown_table(
        ['process', 'RSS after build (MiB)', 'peak RSS (MiB)'],
        [[label, f'{res[k]["rss_built"]:.0f}', f'{res[k]["rss_peak"]:.0f}']
         for k, label in (('dupl', 'DuPL (both variants)'),
                          ('supervised', 'supervised EncoderDecoder'))])
    numerics = ('both students' if spec['numerics_students'] == 2 else
                'student 1') + (', all CAM scales' if not spec[
                    'numerics_scales'] else ', scale 1.0 alone')
    return (
        f'`{spec["file"]}`, batch {spec["batch"]} at {spec["crop"]}x'
        f'{spec["crop"]} (strong view {int(spec["crop"] * .75)}), phase C '
        f'(every stage on), {torch.get_num_threads()} torch thread(s), '
        f'{iters} timed iteration(s) per variant after '
        + (f'{warmup} warm-up' if warmup else 'a warm-up forward/backward/'
           'AdamW step') +
        ' (variants alternate, reuse first), medians. Seconds per '
        'iteration:\n\n' + markdown_table(
            ['stage', 'DuPL (s)', 'share', 'with scale-1.0 CAM reuse (s)'],
            rows) +
        f'\n\n- Supervised `EncoderDecoder` (same backbone + LargeFOV head, '
        f'pixel-label CE, same batch and optimizer): {sup_total:.3f} s '
        f'(forward {_med(sup["steps"], "forward"):.3f}, backward + step '
        f'{_med(sup["steps"], "backward + step"):.3f}). The DuPL model step '
        f'costs {total / sup_total:.1f}x a supervised one (two students, '
        'CAMs, pseudo labels, GMM, consistency).\n'
        f'- Official `need_sp` discarded double forward (both students on '
        f'2B images, phase C), not run by this segmentor: {need_sp:.3f} s '
        f'per iteration, {need_sp / total:.1%} of the model step.\n'
        f'- Scale-1.0 CAM reuse: model step {total:.3f} -> '
        f'{total_reuse:.3f} s ({1 - total_reuse / total:.1%} saved; CAM '
        f'stage {_med(steps, "cam"):.3f} -> {_med(reuse, "cam"):.3f} s). '
        f'Numerics ({numerics}, one batch): max abs difference of the '
        f'normalised CAMs with and without reuse '
        f'{dupl["max_abs_diff"]:.2e}.\n\n'
        'Peak memory (resident set of each measuring process, imports '
        f'included):\n\n{mem}')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config', choices=sorted(CONFIGS), default='toy')
    parser.add_argument('--iters', type=int, default=None)
    parser.add_argument('--warmup', type=int, default=None)
    parser.add_argument('--threads', type=int, default=1,
                        help="torch threads (0 keeps torch's default)")
    parser.add_argument('--child', choices=sorted(CHILDREN), default=None,
                        help=argparse.SUPPRESS)
    parser.add_argument('--no-write', action='store_true')
    args = parser.parse_args()
    set_threads(args.threads)
    spec = CONFIGS[args.config]
    iters = spec['iters'] if args.iters is None else args.iters
    warmup = spec['warmup'] if args.warmup is None else args.warmup
    if args.child:
        from mmengine.registry import init_default_scope
        init_default_scope('mmseg')
        import mmseg_dupl  # noqa: F401
        print(json.dumps(CHILDREN[args.child](args.config, iters, warmup)))
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


if __name__ == '__main__':
    main()
