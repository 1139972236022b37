# Copyright (c) OpenMMLab. All rights reserved.
"""The demo over seeds and datasets: DuPL, the baseline and ablations.

Trains every row below on toy datasets made with different generator
seeds and with different training seeds, all from the same pretrained toy
backbone (as every VOC run starts from the same ImageNet weights), and
writes mean ± std of every figure to benchmarks/RESULTS.md:

- ``dupl``: configs/dupl_vit-tiny_toy.py;
- ``baseline``: configs/baseline_single-student_vit-tiny_toy.py;
- ``no_gmm``: DuPL without the GMM filter (``noise_filter=False``), so
  nothing is filtered; the consistency loss still starts after
  ``phases.gmm``;
- ``no_consistency``: DuPL with ``loss_weights.consistency=0``;
- ``no_discrepancy``: DuPL with ``loss_weights.disc=0``;
- ``fixed_threshold``: DuPL with ``thresholds.high_target`` equal to
  ``thresholds.high`` (no cosine descent);
- ``fully_supervised``: NOT weakly supervised, the reference every WSSS
  paper gives: the same network from the same weights, trained on the
  ground-truth masks with DuPL's training images, schedule and learning rates
  (configs/fully-supervised_vit-tiny_toy.py). Its seg mIoU bounds what
  image labels can give this network in this budget.

``--table recipe`` shows what the toy recipe is made of: DuPL and the
fully supervised reference (their runs are shared with the demo table)
next to runs with one or more choices of the recipe undone (the row's name
lists them):

- ``_voc_crops``: VOC's training augmentation at the toy crop size (random
  0.5-2x rescales cropped to 128, ToCo's colour jitter, greyscale and blur:
  the config's ``voc_style_train_pipeline``) instead of whole images
  resized to 128x128 as val resizes them;
- ``_pretrain96``: the 128-d backbone pretrained on 96 px mosaics (48 px
  tiles; ``tools/pretrain_toy_backbone.py --img-size 96``, built and cached
  under work_dirs/pretrained on the first run) instead of the committed
  weights pretrained on 128 px mosaics (64 px tiles);
- ``_narrow``: the 64-d backbone of configs/dupl_vit-tiny-narrow_toy.py
  (its own committed weights, pretrained on 96 px mosaics) instead of the
  128-d one;
- ``_3x_iters``: three times the iterations, every phase scaled with them;
- ``_par_down2``: PAR on the image at half resolution (VOC's
  ``down_scale=2``) instead of the toy's full resolution.

Rows: ``dupl_pretrain96``, ``fully_supervised_pretrain96``,
``dupl_par_down2_pretrain96``, ``dupl_par_down2_voc_crops_pretrain96``,
``fully_supervised_voc_crops_pretrain96``, ``dupl_narrow``,
``dupl_par_down2_narrow_voc_crops`` and
``fully_supervised_narrow_voc_crops`` (the first demo's recipe),
``dupl_par_down2_narrow_voc_crops_3x_iters``.

Design: ``--design paired`` (default) trains seed i on dataset i (one run
per dataset per row); ``--design grid`` every seed on every dataset. Each
run is a child process with one torch thread (``--jobs`` of them at once);
its figures go to ``RUNS_DIR/<row>_d<dataset>_s<seed>.json``, so an
interrupted benchmark resumes, and the table is rewritten after every
finished run with the count of finished runs, so it is honest even if
stopped early.

    python benchmarks/bench_demo_seeds.py --jobs 2
    python benchmarks/bench_demo_seeds.py --table recipe --jobs 2
"""
import argparse
import json
import os
import os.path as osp
import statistics
import sys
import tempfile
import time
from typing import Dict, List, Optional, Sequence, Tuple

from common import (REPO, RESULTS, command_line, machine_info,
                    markdown_table, run_jobs, run_logged)

sys.path.insert(0, osp.join(REPO, 'tools'))

ROWS = ('dupl', 'baseline', 'no_gmm', 'no_consistency', 'no_discrepancy',
        'fixed_threshold', 'fully_supervised')
ROW_NAMES = dict(
    dupl='DuPL', baseline='single-student baseline', no_gmm='DuPL, no GMM '
    'filter', no_consistency='DuPL, no consistency loss',
    no_discrepancy='DuPL, no discrepancy loss',
    fixed_threshold='DuPL, fixed threshold',
    fully_supervised='fully supervised (GT masks, not WSSS)',
    dupl_pretrain96='DuPL, backbone pretrained on 96 px mosaics',
    fully_supervised_pretrain96='fully supervised, backbone pretrained on '
    '96 px mosaics',
    dupl_par_down2_pretrain96='DuPL, pretrained on 96 px, PAR at half '
    'resolution',
    dupl_par_down2_voc_crops_pretrain96='DuPL, pretrained on 96 px, PAR at '
    'half res., VOC-style crops and colour aug',
    fully_supervised_voc_crops_pretrain96='fully supervised, pretrained on '
    '96 px, VOC-style crops and colour aug',
    dupl_narrow='DuPL, 64-d backbone (pretrained on 96 px)',
    dupl_par_down2_narrow_voc_crops='DuPL, 64-d (pretrained on 96 px), PAR '
    'at half res., VOC-style crops (the first demo)',
    fully_supervised_narrow_voc_crops='fully supervised, 64-d (pretrained '
    'on 96 px), VOC-style crops',
    dupl_par_down2_narrow_voc_crops_3x_iters='DuPL, 64-d (pretrained on 96 '
    'px), PAR at half res., VOC-style crops, 3x the iterations')
# Rows that undo a choice of the toy recipe (their names list the
# changes, see ablate()), and the default rows of each table.
RECIPE_ROWS = ('dupl_pretrain96', 'fully_supervised_pretrain96',
               'dupl_par_down2_pretrain96',
               'dupl_par_down2_voc_crops_pretrain96',
               'fully_supervised_voc_crops_pretrain96', 'dupl_narrow',
               'dupl_par_down2_narrow_voc_crops',
               'fully_supervised_narrow_voc_crops',
               'dupl_par_down2_narrow_voc_crops_3x_iters')
TABLE_ROWS = dict(demo=ROWS, recipe=('dupl', 'fully_supervised') +
                  RECIPE_ROWS)
NARROW_CONFIG = osp.join(REPO, 'configs', 'dupl_vit-tiny-narrow_toy.py')
# The 128-d backbone pretrained on 96 px mosaics (48 px tiles), as before
# the 128 px default: the `_pretrain96` rows. Not committed; built (or
# reused, cached) by tools/pretrain_toy_backbone.py --img-size 96.
PRETRAIN96_CHECKPOINT = osp.join(REPO, 'work_dirs', 'pretrained',
                                 'toy_vit_cls_96px.pth')
FIGURES = ('seg_s1', 'seg_s2', 'seg_ensemble', 'cam_train', 'pseudo_train')
SECTION = '## Demo: DuPL vs the baseline over seeds and datasets'
SECTIONS = dict(
    demo=SECTION,
    recipe='## What the toy recipe is made of: pretraining, width, images, '
    'PAR, iterations')
SUMMARY = osp.join(REPO, 'benchmarks', 'demo_seeds_summary.json')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--datasets', type=int, nargs='+', default=[0, 1, 2],
                        help='generator seeds of the toy datasets')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2],
                        help='training seeds')
    parser.add_argument('--design', choices=('paired', 'grid'),
                        default='paired')
    parser.add_argument('--table', choices=tuple(TABLE_ROWS),
                        default='demo',
                        help='demo: DuPL, the baseline, the ablations and '
                        'the reference; recipe: rows that undo a choice of '
                        'the toy recipe')
    parser.add_argument('--rows', nargs='+', choices=ROWS + RECIPE_ROWS,
                        default=None, help='default: the table\'s rows')
    parser.add_argument('--jobs', type=int, default=2,
                        help='runs at once (one torch thread each)')
    parser.add_argument('--iters', type=int, default=None,
                        help='training iterations (default: the configs\')')
    parser.add_argument('--data-dir', default=osp.join(REPO, 'data'))
    parser.add_argument('--runs-dir',
                        default=osp.join(REPO, 'work_dirs', 'bench_demo'))
    parser.add_argument('--report-only', action='store_true',
                        help='rewrite the table from the finished runs in '
                        'RUNS_DIR without starting any')
    parser.add_argument('--note', default='',
                        help='a sentence for the table (e.g. why it is '
                        'partial)')
    parser.add_argument('--results', default=RESULTS)
    parser.add_argument('--summary', default=SUMMARY)
    # one run (what the parent starts in a child process)
    parser.add_argument('--one', nargs=3, metavar=('ROW', 'DATA', 'SEED'),
                        help=argparse.SUPPRESS)
    parser.add_argument('--out', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rows is None:
        args.rows = list(TABLE_ROWS[args.table])
    return args


# ---------------------------------------------------------------- one run
def ablate(cfg, row: str) -> None:
    """Turn the DuPL config into ``row`` (in place)."""
    train_cfg = cfg.model.train_cfg
    if row == 'no_gmm':
        # phase C without the filter; the consistency loss still starts
        # at phases.gmm + 1
        train_cfg.noise_filter = False
    elif row == 'no_consistency':
        train_cfg.loss_weights.consistency = 0.
    elif row == 'no_discrepancy':
        train_cfg.loss_weights.disc = 0.
    elif row == 'fixed_threshold':
        train_cfg.thresholds.high_target = train_cfg.thresholds.high
    elif row not in ROWS + RECIPE_ROWS:
        raise ValueError(f'unknown row {row!r}; choose from '
                         f'{ROWS + RECIPE_ROWS}')
    if '_narrow' in row:
        use_backbone_of(cfg, NARROW_CONFIG)
    if '_pretrain96' in row:
        import run_demo
        run_demo.set_pretrained(cfg, PRETRAIN96_CHECKPOINT)
    if '_voc_crops' in row:
        use_voc_style_images(cfg)
    if '_par_down2' in row:
        cfg.model.pseudo_labeler.down_scale = 2
    if row.endswith('_3x_iters'):
        import run_demo
        run_demo.scale_schedule(cfg, 3 * cfg.train_cfg.max_iters)


def use_voc_style_images(cfg) -> None:
    """Train with VOC's augmentation at the toy crop size: the random
    rescale of the config's ``voc_style_train_pipeline`` in place of the
    whole-image resize, and its ToCo colour jitter, greyscale and blur
    after the crop (the rest of the pipeline, masks included, kept)."""
    voc = {t['type']: t for t in cfg.voc_style_train_pipeline}
    pipeline = []
    for transform in cfg.train_dataloader.dataset.pipeline:
        if transform['type'] == 'Resize':
            transform = voc['RandomRescale']
        pipeline.append(transform)
        if transform['type'] == 'RandomCropWithValidBox':
            pipeline.append(voc['ToCoColorAug'])
    cfg.train_dataloader.dataset.pipeline = pipeline


def use_backbone_of(cfg, dupl_config: str) -> None:
    """Give a config the student backbone of ``dupl_config`` (its weights
    included) and a decoder that reads it: a DuPL config's students, or an
    mmseg segmentor's (the fully supervised reference) backbone."""
    from mmengine.config import Config
    student = Config.fromfile(dupl_config).model.student
    target = cfg.model.get('student', cfg.model)
    target.backbone = student.backbone
    target.decode_head.in_channels = student.decode_head.in_channels
    if 'in_channels' in target:  # a DuPL student's classifier input
        target.in_channels = student.in_channels


def row_model(row: str) -> Tuple[str, List[str]]:
    """``(config, students evaluated)`` a row starts from (ablate()
    then changes it)."""
    import run_demo
    if row.startswith('fully_supervised'):
        return run_demo.DEMO_MODELS['fully_supervised']
    # the ablations and recipe rows are DuPL's config, changed by ablate()
    return run_demo.DEMO_MODELS.get(row, run_demo.DEMO_MODELS['dupl'])


def run_one(row: str, data_root: str, seed: int, work_dir: str,
            iters: Optional[int]) -> Dict:
    """Train one row on one dataset with one seed; evaluate as the demo."""
    import run_demo
    config, students = row_model(row)
    cfg = run_demo.load_config(config, data_root, work_dir, iters)
    ablate(cfg, row)
    cfg.randomness = dict(seed=seed)
    cfg.custom_hooks = [h for h in cfg.custom_hooks
                        if h['type'] != 'ProgressBarHook']
    run = run_demo.train(cfg)
    val_set = run_demo.split_dataset(cfg, cfg.val_dataloader.dataset.ann_file)
    train_set = run_demo.split_dataset(cfg,
                                       'ImageSets/Segmentation/train.txt')
    metrics = run_demo.evaluate_all(run['runner'].model, val_set, train_set,
                                    students)
    return dict(row=row, seed=seed, data_root=data_root,
                seconds=run['seconds'], metrics=metrics,
                classes=list(val_set.metainfo['classes']))


# ---------------------------------------------------------------- parent
def plan(args) -> List[Tuple[str, int, int]]:
    """``(row, dataset, seed)`` triples: DuPL and the baseline on every
    pair first, then the ablations, pair by pair, so that a benchmark
    stopped early has the main comparison complete."""
    if args.design == 'paired':
        if len(args.seeds) != len(args.datasets):
            raise ValueError('--design paired needs as many --seeds as '
                             '--datasets')
        pairs = list(zip(args.datasets, args.seeds))
    else:
        pairs = [(d, s) for d in args.datasets for s in args.seeds]
    main = [r for r in args.rows if r in ('dupl', 'baseline')]
    rest = [r for r in args.rows if r not in main]
    return [(row, d, s) for group in (main, rest) for d, s in pairs
            for row in group]


def ensure_dataset(data_dir: str, seed: int) -> str:
    """The toy dataset of generator seed ``seed`` (default arguments)."""
    from toy_voc_data import make_toy_voc
    root = osp.join(data_dir, f'toy_voc_seed{seed}')
    done = osp.join(root, '.done')
    if not osp.isfile(done):
        make_toy_voc(root, seed=seed, overwrite=True)
        open(done, 'w').close()
    return root


def ensure_narrow_backbone() -> None:
    """Check (or rebuild) the committed weights of the 64-d rows."""
    import run_demo
    from mmengine.config import Config
    run_demo.ensure_pretrained(Config.fromfile(NARROW_CONFIG))


def ensure_pretrain96_backbone() -> None:
    """Build (or reuse) the 128-d weights of the `_pretrain96` rows."""
    import run_demo
    from mmengine.config import Config
    cfg = Config.fromfile(run_demo.DEMO_MODELS['dupl'][0])
    run_demo.set_pretrained(cfg, PRETRAIN96_CHECKPOINT)
    run_demo.ensure_pretrained(cfg, ('--img-size', '96'))


def result_path(args, row: str, data: int, seed: int) -> str:
    return osp.join(args.runs_dir, f'{row}_d{data}_s{seed}.json')


def launch(args, job: Tuple[str, int, int], data_root: str) -> None:
    """Run one job in a child process with one torch thread."""
    row, data, seed = job
    out = result_path(args, row, data, seed)
    if osp.isfile(out):
        return
    work_dir = osp.splitext(out)[0]
    cmd = [sys.executable, osp.abspath(__file__), '--one', row, data_root,
           str(seed), '--out', out]
    if args.iters:
        cmd += ['--iters', str(args.iters)]
    os.makedirs(work_dir, exist_ok=True)
    run_logged(cmd, work_dir + '.log')


def load_results(args, jobs) -> List[Dict]:
    results = []
    for row, data, seed in jobs:
        path = result_path(args, row, data, seed)
        if osp.isfile(path):
            with open(path) as f:
                results.append(dict(json.load(f), dataset=data))
    return results


def mean_std(values: Sequence[float], signed: bool = False) -> str:
    """``'mean ± std'`` (one value: itself; none: a dash), one decimal;
    ``signed`` writes the mean's sign (for differences)."""
    if not values:
        return '–'
    fmt = '+.1f' if signed else '.1f'
    if len(values) == 1:
        return f'{values[0]:{fmt}}'
    return (f'{statistics.mean(values):{fmt}} ± '
            f'{statistics.stdev(values):.1f}')


def summary_rows(results: List[Dict], rows: Sequence[str]) -> List[list]:
    table = []
    for row in rows:
        runs = [r for r in results if r['row'] == row]
        cells = [mean_std([r['metrics'][k]['mIoU'] for r in runs
                           if k in r['metrics']]) for k in FIGURES]
        minutes = mean_std([r['seconds'] / 60 for r in runs])
        table.append([ROW_NAMES[row], len(runs)] + cells + [minutes])
    return table


def per_class_rows(results: List[Dict], rows: Sequence[str],
                   key: str) -> Tuple[List[str], List[list]]:
    classes = results[0]['classes']
    table = []
    for row in rows:
        runs = [r for r in results if r['row'] == row and key in r['metrics']]
        table.append([ROW_NAMES[row]] + [
            mean_std([r['metrics'][key]['IoU'][i] for r in runs])
            for i in range(len(classes))])
    return classes, table


def paired_leads(results: List[Dict], key: str) -> List[float]:
    """DuPL - baseline on each (dataset, seed) both finished."""
    by = {(r['row'], r['dataset'], r['seed']): r for r in results}
    return [
        by[('dupl', d, s)]['metrics'][key]['mIoU'] -
        by[('baseline', d, s)]['metrics']['seg_s1']['mIoU']
        for (row, d, s) in by if row == 'dupl' and ('baseline', d, s) in by
    ]


def paired_differences(results: List[Dict], rows: Sequence[str]
                       ) -> List[list]:
    """Each row minus DuPL on the same (dataset, seed), seg s1 and
    ensemble (a row without an ensemble, the baseline or a fully
    supervised one, stands in with its s1), mean ± std over the pairs:
    the dataset and seed effects cancel in each difference."""
    by = {(r['row'], r['dataset'], r['seed']): r for r in results}
    table = []
    for row in rows:
        if row == 'dupl':
            continue
        cells = []
        for key in ('seg_s1', 'seg_ensemble'):
            diffs = []
            for (name, d, s), run in by.items():
                if name != row or ('dupl', d, s) not in by:
                    continue
                mine = run['metrics'].get(key, run['metrics']['seg_s1'])
                diffs.append(mine['mIoU'] -
                             by[('dupl', d, s)]['metrics'][key]['mIoU'])
            cells.append(mean_std(diffs, signed=True))
        table.append([ROW_NAMES[row], len(diffs)] + cells)
    return table


def lead_sentence(results: List[Dict], total: int) -> str:
    leads = {k: paired_leads(results, f'seg_{k}') for k in ('s1',
                                                             'ensemble')}
    n = len(leads['s1'])
    if n < 2:
        return (f'DuPL vs the baseline over seeds: fewer than two finished '
                f'pairs yet ({len(results)} of {total} runs).')
    parts = []
    for key, values in leads.items():
        mean, std = statistics.mean(values), statistics.stdev(values)
        parts.append(f'{key} {mean:+.1f} ± {std:.1f}')
    mean, std = statistics.mean(leads['s1']), statistics.stdev(leads['s1'])
    verdict = ('inside the run-to-run spread: no lead can be claimed'
               if abs(mean) <= std else
               'larger than its spread' if mean > 0 else
               'a deficit larger than its spread')
    return (f'DuPL minus the baseline, seg mIoU on toy val (mean ± std over '
            f'{n} paired dataset/seed runs, benchmarks/RESULTS.md): '
            f"{', '.join(parts)} points; the s1 lead is {verdict}.")


def fraction_of_fully_supervised(results: List[Dict],
                                  key: str) -> List[float]:
    """DuPL's ``key`` seg mIoU as a percentage of the fully supervised
    reference's on each (dataset, seed) both finished."""
    by = {(r['row'], r['dataset'], r['seed']): r for r in results}
    return [
        100 * run['metrics'][key]['mIoU'] /
        by[('fully_supervised', d, s)]['metrics']['seg_s1']['mIoU']
        for (row, d, s), run in by.items()
        if row == 'dupl' and ('fully_supervised', d, s) in by
    ]


def reference_sentence(results: List[Dict]) -> str:
    """The fully supervised reference and DuPL's share of it, or '' if
    no pair has both."""
    fractions = {k: fraction_of_fully_supervised(results, f'seg_{k}')
                 for k in ('s1', 'ensemble')}
    if not fractions['s1']:
        return ''
    reference = [r['metrics']['seg_s1']['mIoU'] for r in results
                 if r['row'] == 'fully_supervised']
    shares = ', '.join(f'{k} {mean_std(v)} %' for k, v in fractions.items())
    return (f'With the ground-truth masks, the same network, weights, '
            f'training images, schedule and learning rates reach '
            f'{mean_std(reference)} seg mIoU on toy val '
            f'({len(reference)} runs, configs/'
            f'fully-supervised_vit-tiny_toy.py); DuPL reaches {shares} of '
            f'it on the same dataset and seed.')


def uses_narrow_backbone(rows: Sequence[str]) -> bool:
    """Whether a row of ``rows`` starts from the 64-d backbone."""
    return any('_narrow' in row for row in rows)


def uses_pretrain96_backbone(rows: Sequence[str]) -> bool:
    """Whether a row of ``rows`` starts from the 96 px 128-d weights."""
    return any('_pretrain96' in row for row in rows)


def weights_sentence(rows: Sequence[str]) -> str:
    """Which pretrained weights the runs of ``rows`` start from."""
    if not (uses_narrow_backbone(rows) or uses_pretrain96_backbone(rows)):
        return 'every run starts from the same pretrained toy backbone.'
    return ('the rows marked "pretrained on 96 px" (the 64-d rows among '
            'them) start from weights pretrained on 96 px mosaics (48 px '
            'tiles, the toy default before the 128 px one), the others from '
            'the committed 128-d weights pretrained on 128 px mosaics '
            '(tools/pretrain_toy_backbone.py).')


def write_results(args, jobs, info: Dict, started: float) -> None:
    results = load_results(args, jobs)
    if not results:
        return
    header = ['row', 'runs'] + [
        'seg s1', 'seg s2', 'seg ensemble', 'CAM (train)',
        'pseudo label (train)'] + ['train min']
    body = [
        f'{len(results)} of {len(jobs)} runs finished '
        f'({args.design} design: datasets {args.datasets} from generator '
        f'seeds, training seeds {args.seeds}'
        + (', seed i on dataset i' if args.design == 'paired' else '')
        + ('' if args.report_only else
           f'; {(time.time() - started) / 60:.0f} min so far') +
        '). mIoU (%), '
        'mean ± std over the finished runs of each row; '
        + weights_sentence(args.rows) + ' Seg on toy val, CAM and pseudo '
        'labels (student 1) on toy train.',
        markdown_table(header, summary_rows(results, args.rows)),
        lead_sentence(results, len(jobs)) if 'baseline' in args.rows
        else '',
        reference_sentence(results),
        'Paired differences, seg mIoU on toy val: each row minus DuPL on '
        'the same dataset and seed (points, mean ± std over the pairs; a '
        'negative number means DuPL is better; a row with one network, the '
        'baseline or a fully supervised one, is compared with its s1 in '
        'both columns).',
        markdown_table(['row', 'pairs', 'seg s1 - DuPL s1',
                        'seg ensemble - DuPL ensemble'],
                       paired_differences(results, args.rows)),
    ] + ([args.note] if args.note else [])
    for key, title in (('seg_s1', 'seg s1 (val)'),
                       ('cam_train', 'CAM (train)'),
                       ('pseudo_train', 'pseudo label (train)')):
        classes, table = per_class_rows(results, args.rows, key)
        body += [f'IoU per class, {title}:',
                 markdown_table(['row'] + classes, table)]
    machine = '\n'.join(f'- {k}: {v}' for k, v in info.items())
    section = SECTIONS[args.table]
    text = (f'{section} ({time.strftime("%Y-%m-%d %H:%M")})\n\n' +
            '\n\n'.join(b for b in body if b) +
            f'\n\nMachine:\n\n{machine}\n\nCommand:\n\n'
            f'```bash\n{command_line()}\n```\n')
    replace_section(args.results, text, section)
    if args.table != 'demo':
        return
    with open(args.summary, 'w') as f:
        json.dump(dict(lead_sentence=lead_sentence(results, len(jobs)),
                       reference_sentence=reference_sentence(results),
                       finished=len(results), planned=len(jobs)), f,
                  indent=1)


def replace_section(path: str, text: str, section: str = SECTION) -> None:
    """Put ``text`` in place of ``section`` (or append it)."""
    content = ''
    if osp.isfile(path):
        with open(path) as f:
            content = f.read()
    start = content.find(section)
    if start < 0:
        content = content.rstrip('\n') + '\n\n' + text
    else:
        end = content.find('\n## ', start + len(section))
        tail = content[end + 1:] if end >= 0 else ''
        content = content[:start] + text + ('\n' + tail if tail else '')
    # write a sibling of its own and rename it over: a reader (another
    # --report-only) never sees a half-written file and so never drops the
    # other sections, and two writers never share the sibling
    fd, tmp = tempfile.mkstemp(dir=osp.dirname(osp.abspath(path)),
                               prefix=osp.basename(path) + '.',
                               suffix='.tmp')
    with os.fdopen(fd, 'w') as f:
        f.write(content)
    os.replace(tmp, path)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    if args.one:
        row, data_root, seed = args.one
        result = run_one(row, data_root, int(seed),
                         osp.splitext(args.out)[0], args.iters)
        with open(args.out, 'w') as f:
            json.dump(result, f, indent=1)
        return
    info = machine_info()
    info['torch threads'] = f'1 per run, {args.jobs} runs at once'
    jobs = plan(args)
    started = time.time()
    if args.report_only:
        write_results(args, jobs, info, started)
        return
    roots = {d: ensure_dataset(args.data_dir, d) for d in args.datasets}
    if uses_narrow_backbone(args.rows):
        ensure_narrow_backbone()
    if uses_pretrain96_backbone(args.rows):
        ensure_pretrain96_backbone()
    os.makedirs(args.runs_dir, exist_ok=True)
    write_results(args, jobs, info, started)

    run_jobs(jobs, lambda job: launch(args, job, roots[job[1]]),
             lambda: write_results(args, jobs, info, started), args.jobs)

if __name__ == '__main__':
    main()
