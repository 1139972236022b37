# Copyright (c) OpenMMLab. All rights reserved.
"""Optional speed switches of the CAM passes: their speed and how far they
move the CAMs and pseudo labels.

- ``train_cfg.cam_autocast='bfloat16'``: the multi-scale CAM passes under
  bf16 autocast (the training forward stays fp32).
- ``--compile``: ``torch.compile`` of each student's backbone (what
  mmengine's ``compile`` option would do to the whole ``train_step``,
  restricted to the part without data-dependent Python), timed with its
  compile time.

Model: ``configs/dupl_vit-b_voc.py`` with DeiT-tiny/16 students (random
init, as ``bench_train_step.py --config deit-tiny``), synthetic batches of
2 at 224, phase-C thresholds. Per batch, both variants run alternately;
reported: median time of the CAM stage (both students' ``multi_scale_cam``)
and of a whole phase-C ``loss()`` + backward, max abs difference of the
normalised ``cam`` / ``cam_aux`` over the image classes, and agreement of
the PAR pseudo labels and of the PTC token labels with the fp32 ones.

    .venv/bin/python benchmarks/bench_cam_switches.py            # bf16
    .venv/bin/python benchmarks/bench_cam_switches.py --compile  # + compile
"""
import argparse
import time
from typing import Callable, Dict, List

import torch
from common import append_section, machine_info, markdown_table, median

import bench_train_step as bts


def _build(name: str):
    cfg, spec = bts._load_cfg(name)
    torch.manual_seed(0)
    model, _ = bts._build_dupl(cfg, spec['phase_c_iter'])
    return cfg, spec, model


def _timed(fn: Callable):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def _labels(model, data: dict) -> dict:
    """CAMs (with the stage time), PAR pseudo labels and PTC token labels
    of both students, as ``loss()`` makes them (phase C state)."""
    weak = data['inputs']['weak']
    samples = data['data_samples']['weak']
    labeler = model.pseudo_labeler
    with torch.no_grad():
        stage = model.pseudo_labels(weak, samples)
        # the CAM stage alone, timed: what the switches change
        _, seconds = _timed(lambda: [
            model.training_cams(s, weak, o, stage.cls_labels)
            for s, o in zip(model.students, stage.outputs)])
    cams, cls_labels, tau = stage.cams, stage.cls_labels, \
        stage.image_thresholds
    pseudo = stage.pseudo.labels
    tokens = [labeler.token_labels(c[1], o['feat'].shape[2:], cls_labels,
                                   tau, stage.state.low_threshold,
                                   stage.img_box)
              for c, o in zip(cams, stage.outputs)]
    present = cls_labels.bool()[:, :, None, None]
    return dict(cams=[[m * present for m in c] for c in cams],
                pseudo=pseudo, tokens=tokens, seconds=seconds)


def _loss_backward(model, data: dict) -> float:
    model.zero_grad(set_to_none=True)
    start = time.perf_counter()
    losses = model(**data, mode='loss')
    model.parse_losses(losses)[0].backward()
    return time.perf_counter() - start


def _agreement(a: List[torch.Tensor], b: List[torch.Tensor]) -> float:
    same = sum(int((x == y).sum()) for x, y in zip(a, b))
    return same / sum(x.numel() for x in a)


def compare_variant(model, batches: List[dict], set_variant: Callable,
                    name: str) -> Dict[str, list]:
    """Alternate fp32 and the variant on each batch."""
    rec = {k: [] for k in ('cam_ref', 'cam_new', 'step_ref', 'step_new',
                           'diff', 'pseudo', 'tokens')}
    for data in batches:
        set_variant(False)
        ref = _labels(model, data)
        rec['step_ref'].append(_loss_backward(model, data))
        set_variant(True)
        new = _labels(model, data)
        rec['step_new'].append(_loss_backward(model, data))
        set_variant(False)
        rec['cam_ref'].append(ref['seconds'])
        rec['cam_new'].append(new['seconds'])
        rec['diff'].append(max(
            float((r - n).abs().max())
            for rc, nc in zip(ref['cams'], new['cams'])
            for r, n in zip(rc, nc)))
        rec['pseudo'].append(_agreement(ref['pseudo'], new['pseudo']))
        rec['tokens'].append(_agreement(ref['tokens'], new['tokens']))
    print(f'{name}: done', flush=True)
    return rec


def _row(name: str, rec: dict) -> list:
    cam_ref, cam_new = median(rec['cam_ref']), median(rec['cam_new'])
    step_ref, step_new = median(rec['step_ref']), median(rec['step_new'])
    return [name, f'{cam_ref:.3f} -> {cam_new:.3f} ({cam_ref / cam_new:.2f}x)',
            f'{step_ref:.3f} -> {step_new:.3f} '
            f'({step_ref / step_new:.2f}x)', f'{max(rec["diff"]):.2e}',
            f'{100 * min(rec["pseudo"]):.3f}% / '
            f'{100 * median(rec["pseudo"]):.3f}%',
            f'{100 * min(rec["tokens"]):.3f}% / '
            f'{100 * median(rec["tokens"]):.3f}%']


def _compile_switch(model):
    """Swap each student's backbone for a compiled one; returns the
    switch and the first-call (compile) seconds per grid size."""
    compiled = {id(s): torch.compile(s.backbone) for s in model.students}
    plain = {id(s): s.backbone for s in model.students}

    def set_variant(on: bool) -> None:
        for s in model.students:
            # bypass nn.Module.__setattr__ registration checks
            s._modules['backbone'] = compiled[id(s)] if on else plain[id(s)]

    return set_variant


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config', default='deit-tiny',
                        choices=sorted(bts.CONFIGS))
    parser.add_argument('--batches', type=int, default=5)
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--compile', action='store_true')
    parser.add_argument('--no-write', action='store_true')
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from mmengine.registry import init_default_scope
    init_default_scope('mmseg')
    import mmseg_dupl  # noqa: F401
    info = machine_info()
    cfg, spec, model = _build(args.config)
    batches = [model.data_preprocessor(
        bts._synthetic_batch(spec, cfg.model.num_classes, seed), True)
        for seed in range(args.batches + 1)]
    _labels(model, batches[0])  # warm-up

    def bf16(on: bool) -> None:
        model.train_cfg['cam_autocast'] = 'bfloat16' if on else None

    rows = [_row("cam_autocast='bfloat16'",
                 compare_variant(model, batches[1:], bf16, 'bf16'))]
    notes = ''
    if args.compile:
        switch = _compile_switch(model)
        switch(True)
        _, first = _timed(lambda: _labels(model, batches[0]))
        _, first_step = _timed(lambda: _loss_backward(model, batches[0]))
        switch(False)
        notes = (f'\n\n`torch.compile` of the backbones: the first CAM '
                 f'stage (compiling the CAM grids) took {first:.0f} s and '
                 f'the first compiled loss + backward {first_step:.0f} s.')
        rows.append(['torch.compile(backbone)',
                     *_row('', compare_variant(model, batches[1:], switch,
                                               'compile'))[1:]])
    body = (
        f'{bts._describe(args.config)}; {args.batches} batches, the '
        'variants alternating on each; medians, and for the labels the '
        'worst and median batch.\n\n' + markdown_table(
            ['switch', 'CAM stage, both students (s)',
             'loss() + backward (s)', 'max abs diff of cam / cam_aux',
             'pseudo-label agreement (min / median)',
             'PTC token-label agreement (min / median)'], rows) + notes)
    print(body)
    if not args.no_write:
        append_section('CAM speed switches', body, info)


if __name__ == '__main__':
    main()
