# Copyright (c) OpenMMLab. All rights reserved.
"""Does DuPL resist confirmation bias on the toy? (the paper's question)

A single student that learns from its own CAM pseudo labels reinforces
its CAM's mistakes through the shared backbone, and its CAM quality
keeps worsening through training; two students that supervise each
other, kept apart by the discrepancy loss, should resist that drift. On
the demo's recipe the backbone trains at 1e-5 for 300 iterations and
hardly moves, so this benchmark first puts training in a regime where the
backbone adapts: the toy recipe from the committed pretrained weights
with the backbone's learning rate multiplied by ``--backbone-lr-mult``
(the demo's 0.1 -> 1.0: 1e-4, where the recipe notes saw the CAMs drift
to the context) and ``--iters`` iterations (every phase scaled with
them). The regime is fixed before any DuPL run; it is not tuned towards
a sign.

Rows, all from the same config and weights (configs/dupl_vit-tiny_toy.py
and its single-student baseline):

- ``baseline``: one student on its own pseudo labels (fixed threshold, no
  GMM filter, no discrepancy; configs/baseline_single-student_vit-tiny_toy.py);
- ``dupl``: DuPL;
- ``no_discrepancy``: DuPL with ``loss_weights.disc=0``;
- ``self_training``: two students, each learning from its own pseudo
  labels (``train_cfg.cross_supervision=False``), discrepancy loss kept.

Each run has PseudoLabelMonitorHook on a fixed subset of train images
(``--monitor-images``, every ``--monitor-every`` iterations): CAM-label
and pseudo-label mIoU (before / after the GMM filter), over-activation and
the students' feature cosine, read back from the run's LocalVisBackend
``scalars.json``; and the in-training validation (DualStudentMetric) on
toy val every ``--val-every`` iterations: seg mIoU per student.

Design as benchmarks/bench_demo_seeds.py: ``--design paired`` trains seed
i on dataset i; each run is a child process with one torch thread
(``--jobs`` at once) and writes ``RUNS_DIR/<row>_d<dataset>_s<seed>.json``,
so an interrupted benchmark resumes; the figure
(benchmarks/confirmation_bias.png: CAM-label and pseudo-label mIoU of
student 1 on train against iteration, mean with a ±std band per row) and
the RESULTS.md section (final / best / best-minus-final of CAM, pseudo
and seg mIoU, mean ± std, and paired differences to DuPL) are rewritten
after every finished run.

    python benchmarks/bench_confirmation_bias.py --jobs 2
    # the regime probe: one seed, the baseline only
    python benchmarks/bench_confirmation_bias.py --rows baseline \\
        --datasets 0 --seeds 0
"""
import argparse
import glob
import json
import os
import os.path as osp
import re
import statistics
import sys
import time
import uuid
from typing import Dict, List, Optional, Sequence, Tuple

from common import (REPO, RESULTS, command_line, machine_info,
                    markdown_table, run_jobs, run_logged)

sys.path.insert(0, osp.join(REPO, 'tools'))

import bench_demo_seeds as seeds  # noqa: E402

ROWS = ('baseline', 'dupl', 'no_discrepancy', 'self_training')
ROW_NAMES = dict(
    baseline='single-student baseline',
    dupl='DuPL',
    no_discrepancy='DuPL, no discrepancy loss',
    self_training='two students, each on its own labels')
# (figure key in the run file, curve name in scalars.json, column title)
CURVES = (('cam', 'monitor/s1.cam_mIoU', 'CAM'),
          ('pseudo', 'monitor/s1.pseudo_mIoU', 'pseudo label'),
          ('seg', 's1.seg_mIoU', 'seg (val)'))
# DualStudentMetric's scores in the validation rows of scalars.json
SCORE = re.compile(r's\d\.(seg|cam|cam_aux)_mIoU|s\d\.cls_F1')
SECTION = '## Confirmation bias on the toy: CAM quality over training'
FIGURE = osp.join(REPO, 'benchmarks', 'confirmation_bias.png')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--rows', nargs='+', choices=ROWS, default=ROWS)
    parser.add_argument('--datasets', type=int, nargs='+', default=[0, 1, 2],
                        help='generator seeds of the toy datasets')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2],
                        help='training seeds (paired: seed i on dataset i)')
    parser.add_argument('--iters', type=int, default=900,
                        help='training iterations (phases scaled)')
    parser.add_argument('--backbone-lr-mult', type=float, default=1.0,
                        help="backbone lr multiplier (the demo's 0.1)")
    parser.add_argument('--monitor-every', type=int, default=None,
                        help='default: iters / 15')
    parser.add_argument('--monitor-images', type=int, default=32)
    parser.add_argument('--val-every', type=int, default=None,
                        help='default: iters / 5')
    parser.add_argument('--jobs', type=int, default=2,
                        help='runs at once, each in a child process with '
                        'one torch thread')
    parser.add_argument('--data-dir', default=osp.join(REPO, 'data'))
    parser.add_argument('--runs-dir', default=osp.join(
        REPO, 'work_dirs', 'bench_confirmation_bias'))
    parser.add_argument('--report-only', action='store_true',
                        help='rewrite the table and figure from the '
                        'finished runs')
    parser.add_argument('--note', default='')
    parser.add_argument('--results', default=RESULTS)
    parser.add_argument('--figure', default=FIGURE)
    parser.add_argument('--one', nargs=3, metavar=('ROW', 'DATA', 'SEED'),
                        help=argparse.SUPPRESS)
    parser.add_argument('--out', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.rows = list(args.rows)
    args.monitor_every = args.monitor_every or max(1, args.iters // 15)
    args.val_every = args.val_every or max(1, args.iters // 5)
    return args


# ---------------------------------------------------------------- one run
def regime_config(row: str, data_root: str, work_dir: str, seed: int,
                  args: argparse.Namespace):
    """The row's config in the benchmark's regime, monitor on."""
    import run_demo
    config = run_demo.BASELINE_CONFIG if row == 'baseline' \
        else run_demo.DUPL_CONFIG
    cfg = run_demo.load_config(config, data_root, work_dir, args.iters)
    if row == 'no_discrepancy':
        seeds.ablate(cfg, row)
    elif row == 'self_training':
        cfg.model.train_cfg.cross_supervision = False
    elif row not in ROWS:
        raise ValueError(f'unknown row {row!r}; choose from {ROWS}')
    cfg.optim_wrapper.paramwise_cfg.custom_keys.backbone.lr_mult = \
        args.backbone_lr_mult
    cfg.train_cfg.val_interval = args.val_every
    cfg.randomness = dict(seed=seed)
    cfg.experiment_name = f'{row}_s{seed}_{uuid.uuid4().hex[:8]}'
    cfg.custom_hooks = [
        h for h in cfg.custom_hooks if h['type'] != 'ProgressBarHook'
    ] + [
        dict(type='PseudoLabelMonitorHook', interval=args.monitor_every,
             num_images=args.monitor_images)
    ]
    return cfg


def read_curves(work_dir: str) -> Dict[str, Dict[int, float]]:
    """``{name: {step: value}}`` of the monitor's and the validation's
    scalars in a run's LocalVisBackend ``scalars.json``."""
    paths = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    if len(paths) != 1:
        raise FileNotFoundError(f'expected one scalars.json under '
                                f'{work_dir}, found {paths}')
    curves: Dict[str, Dict[int, float]] = {}
    with open(paths[0]) as f:
        for row in map(json.loads, f):
            for key, value in row.items():
                if key.startswith('monitor/') or SCORE.fullmatch(key):
                    curves.setdefault(key, {})[int(row['step'])] = value
    return curves


def run_one(row: str, data_root: str, seed: int, work_dir: str,
            args: argparse.Namespace) -> Dict:
    """Train one row on one dataset with one seed; its curves."""
    import run_demo
    cfg = regime_config(row, data_root, work_dir, seed, args)
    run = run_demo.train(cfg)
    curves = read_curves(work_dir)
    return dict(row=row, seed=seed, data_root=data_root,
                seconds=run['seconds'], iters=args.iters,
                backbone_lr_mult=args.backbone_lr_mult,
                curves={k: {str(s): v for s, v in c.items()}
                        for k, c in curves.items()})


# ---------------------------------------------------------------- parent
def jobs_of(args) -> List[Tuple[str, int, int]]:
    """``(row, dataset, seed)``, seed i on dataset i, the baseline and
    DuPL on every pair first."""
    if len(args.seeds) != len(args.datasets):
        raise ValueError('pass as many --seeds as --datasets (paired)')
    pairs = list(zip(args.datasets, args.seeds))
    main = [r for r in args.rows if r in ('baseline', 'dupl')]
    rest = [r for r in args.rows if r not in main]
    return [(row, d, s) for group in (main, rest) for d, s in pairs
            for row in group]


def result_path(args, row: str, data: int, seed: int) -> str:
    return osp.join(args.runs_dir, f'{row}_d{data}_s{seed}.json')


def launch(args, job: Tuple[str, int, int], data_root: str) -> None:
    """One run: in a child process with one torch thread (``--jobs`` >
    0), or in this process (``--jobs 0``, sequential; for tests)."""
    row, data, seed = job
    out = result_path(args, row, data, seed)
    if osp.isfile(out):
        return
    work_dir = osp.splitext(out)[0]
    os.makedirs(work_dir, exist_ok=True)
    if args.jobs == 0:
        result = run_one(row, data_root, seed, work_dir, args)
        _write_json(out, result)
        return
    cmd = [sys.executable, osp.abspath(__file__), '--one', row, data_root,
           str(seed), '--out', out, '--iters', str(args.iters),
           '--backbone-lr-mult', str(args.backbone_lr_mult),
           '--monitor-every', str(args.monitor_every),
           '--monitor-images', str(args.monitor_images),
           '--val-every', str(args.val_every)]
    run_logged(cmd, work_dir + '.log')

def _write_json(path: str, data: Dict) -> None:
    with open(path + '.tmp', 'w') as f:
        json.dump(data, f, indent=1)
    os.replace(path + '.tmp', path)


def load_results(args, jobs) -> List[Dict]:
    results = []
    for row, data, seed in jobs:
        path = result_path(args, row, data, seed)
        if osp.isfile(path):
            with open(path) as f:
                run = json.load(f)
            run['curves'] = {k: {int(s): v for s, v in c.items()}
                             for k, c in run['curves'].items()}
            results.append(dict(run, dataset=data))
    return results


def summary(curve: Dict[int, float]) -> Dict[str, float]:
    """Final, best and best minus final of a curve ``{step: value}``."""
    final = curve[max(curve)]
    best = max(curve.values())
    return dict(final=final, best=best, drop=best - final)


def run_figures(run: Dict, student: str = 's1'
                ) -> Dict[str, Dict[str, float]]:
    """Per figure (cam, pseudo, seg) of a student: final, best, drop."""
    names = {key: name.replace('s1.', f'{student}.')
             for key, name, _ in CURVES}
    return {key: summary(run['curves'][name])
            for key, name in names.items() if run['curves'].get(name)}


def summary_rows(results: List[Dict], rows: Sequence[str],
                 student: str = 's1') -> List[list]:
    """Per row, the mean ± std over its runs of each figure of
    ``student`` (rows without that student are left out)."""
    table = []
    for row in rows:
        runs = [f for f in (run_figures(r, student) for r in results
                            if r['row'] == row) if f]
        if not runs:
            continue
        cells = []
        for key, _, _ in CURVES:
            for stat in ('final', 'best', 'drop'):
                cells.append(seeds.mean_std(
                    [f[key][stat] for f in runs if key in f]))
        table.append([ROW_NAMES[row], len(runs)] + cells)
    return table


def paired_rows(results: List[Dict], rows: Sequence[str]) -> List[list]:
    """Each row minus DuPL on the same (dataset, seed): final CAM /
    pseudo / seg mIoU and their drops (points, mean ± std over pairs)."""
    by = {(r['row'], r['dataset'], r['seed']): run_figures(r)
          for r in results}
    table = []
    for row in rows:
        if row == 'dupl':
            continue
        pairs = [(mine, by[('dupl', d, s)]) for (name, d, s), mine in
                 by.items() if name == row and ('dupl', d, s) in by]
        cells = []
        for key, _, _ in CURVES:
            for stat in ('final', 'drop'):
                cells.append(seeds.mean_std(
                    [m[key][stat] - dupl[key][stat] for m, dupl in pairs
                     if key in m and key in dupl], signed=True))
        table.append([ROW_NAMES[row], len(pairs)] + cells)
    return table


def cosine_sentence(results: List[Dict]) -> str:
    """The two students' final feature cosine, per two-student row."""
    parts = []
    for row in ROWS:
        values = [r['curves']['monitor/feature_cosine'] for r in results
                  if r['row'] == row
                  and r['curves'].get('monitor/feature_cosine')]
        if values:
            first = [c[min(c)] for c in values]
            last = [c[max(c)] for c in values]
            parts.append(f'{ROW_NAMES[row]} {_mean_std3(first)} -> '
                         f'{_mean_std3(last)}')
    if not parts:
        return ''
    return ('Cosine similarity of the two students\' final features '
            '(per channel over the spatial axis, train subset), first -> '
            'last report: ' + '; '.join(parts) + '.')


def _mean_std3(values: Sequence[float]) -> str:
    if len(values) == 1:
        return f'{values[0]:.3f}'
    return f'{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}'


def plot(results: List[Dict], rows: Sequence[str], path: str) -> None:
    """CAM-label and pseudo-label mIoU (student 1, train subset) against
    iteration: per row, the mean over its runs with a ±std band."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    import numpy as np
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharex=True)
    for ax, (_, name, title) in zip(axes, CURVES[:2]):
        for row in rows:
            curves = [r['curves'][name] for r in results
                      if r['row'] == row and r['curves'].get(name)]
            if not curves:
                continue
            steps = sorted(set.intersection(*(set(c) for c in curves)))
            values = np.array([[c[s] for s in steps] for c in curves])
            mean, std = values.mean(0), values.std(0)
            line, = ax.plot(steps, mean,
                            label=f'{ROW_NAMES[row]} ({len(curves)})')
            if len(curves) > 1:
                ax.fill_between(steps, mean - std, mean + std, alpha=0.2,
                                color=line.get_color())
        ax.set_title(f'{title} mIoU on train (student 1)')
        ax.set_xlabel('iteration')
        ax.set_ylabel('mIoU (%)')
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _hours(results: List[Dict]) -> float:
    """Training hours of the finished runs, summed."""
    return sum(r['seconds'] for r in results) / 3600


def write_results(args, jobs, info: Dict, started: float) -> None:
    results = load_results(args, jobs)
    if not results:
        return
    plot(results, args.rows, args.figure)
    header = ['row', 'runs'] + [
        f'{title} {stat}' for _, _, title in CURVES
        for stat in ('final', 'best', 'best - final')]
    paired_header = ['row', 'pairs'] + [
        f'{title} {stat} - DuPL' for _, _, title in CURVES
        for stat in ('final', 'drop')]
    body = [
        f'{len(results)} of {len(jobs)} runs finished (datasets '
        f'{args.datasets}, training seeds {args.seeds}, seed i on dataset '
        f'i; {args.iters} iterations, backbone lr x{args.backbone_lr_mult} '
        f'of the base lr 1e-4, every phase scaled from the toy config; '
        f'the runs trained {_hours(results):.1f} h in all, a run per '
        'core' + ('' if args.report_only else
                  f', {(time.time() - started) / 60:.0f} min in the last '
                  'invocation') + '). '
        f'Student 1, mIoU (%), mean ± std over the runs: CAM labels (eval '
        f'rule, bg <= 0.5) and pseudo labels (before the GMM filter, on '
        f'the pixels they label; in phase A the labels the CAMs would '
        f'give) on {args.monitor_images} fixed train images every '
        f'{args.monitor_every} iterations (PseudoLabelMonitorHook), seg on '
        f'toy val every {args.val_every} (DualStudentMetric). "best - '
        f'final" is the drift: how much of its best quality a run lost by '
        f'the end.',
        markdown_table(header, summary_rows(results, args.rows)),
        'Student 2 of the two-student rows, the same figures (the figure '
        'and the paired differences are of student 1):',
        markdown_table(header, summary_rows(results, args.rows, 's2')),
        'Paired differences: each row minus DuPL on the same dataset and '
        'seed (points, mean ± std over the pairs; a positive drop '
        'difference means the row drifted more than DuPL).',
        markdown_table(paired_header, paired_rows(results, args.rows)),
        cosine_sentence(results),
        f'Figure: {osp.relpath(args.figure, osp.dirname(args.results))}.',
    ] + ([args.note] if args.note else [])
    machine = '\n'.join(f'- {k}: {v}' for k, v in info.items())
    text = (f'{SECTION} ({time.strftime("%Y-%m-%d %H:%M")})\n\n' +
            '\n\n'.join(b for b in body if b) +
            f'\n\nMachine:\n\n{machine}\n\nCommand:\n\n'
            f'```bash\n{command_line()}\n```\n')
    seeds.replace_section(args.results, text, SECTION)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    if args.one:
        row, data_root, seed = args.one
        result = run_one(row, data_root, int(seed),
                         osp.splitext(args.out)[0], args)
        _write_json(args.out, result)
        return
    info = machine_info()
    info['torch threads'] = (f'1 per run, {args.jobs} runs at once'
                             if args.jobs else info['torch threads'])
    jobs = jobs_of(args)
    started = time.time()
    if args.report_only:
        write_results(args, jobs, info, started)
        return
    roots = {d: seeds.ensure_dataset(args.data_dir, d)
             for d in args.datasets}
    os.makedirs(args.runs_dir, exist_ok=True)
    run_jobs(jobs, lambda job: launch(args, job, roots[job[1]]),
             lambda: write_results(args, jobs, info, started), args.jobs)

if __name__ == '__main__':
    main()
