# Copyright (c) OpenMMLab. All rights reserved.
"""Figures and ``report.md`` of the demo (tools/run_demo.py)."""
import glob
import json
import os.path as osp
from typing import Dict, List

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from mmengine.dataset import pseudo_collate  # noqa: E402

NUM_SHOWN = 4
REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
# Written by benchmarks/bench_demo_seeds.py: DuPL's lead with its spread.
BENCH_SUMMARY = osp.join(REPO, 'benchmarks', 'demo_seeds_summary.json')


def read_scalars(work_dir: str) -> List[dict]:
    """The ``scalars.json`` rows mmengine's LocalVisBackend wrote."""
    paths = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                      'scalars.json')))
    if not paths:
        return []
    with open(paths[-1]) as f:
        return [json.loads(line) for line in f if line.strip()]


def series(rows: List[dict], key: str):
    """``(steps, values)`` of one logged scalar."""
    pairs = [(r['step'], r[key]) for r in rows if key in r]
    return tuple(zip(*pairs)) if pairs else ((), ())


def plot_curves(runs: Dict, out: str) -> None:
    """Loss, seg mIoU on val after training (the demo's evaluation),
    threshold and filtered-fraction curves."""
    fig, axes = plt.subplots(2, 2, figsize=(11, 7))
    for name, run in runs.items():
        rows = read_scalars(run['cfg'].work_dir)
        steps, loss = series(rows, 'loss')
        axes[0, 0].plot(steps, loss, label=f'{name} total')
        # the demo's own evaluation after training (it skips mmengine's)
        for key, seg in run['metrics'].items():
            if key.startswith('seg_'):
                axes[0, 1].plot([run['cfg'].train_cfg.max_iters],
                                [seg['mIoU']], marker='o',
                                label=f"{name} {key[4:]}")
        if name == 'dupl':
            for key in ('s1.loss_seg', 's1.loss_consistency', 'loss_disc'):
                steps, values = series(rows, key)
                axes[0, 0].plot(steps, values, label=key, alpha=.7)
            steps, thr = series(rows, 'image_threshold')
            axes[1, 0].plot(steps, thr, label='mean per-image tau_i')
            for key in ('gmm.s1.removed', 'gmm.s2.removed'):
                steps, values = series(rows, key)
                axes[1, 1].plot(steps, values, label=key)
    titles = ('training loss', 'seg mIoU on val after training (%)',
              'high threshold (DuPLSchedule)',
              'fraction of fg pseudo-label pixels removed by GMM')
    for ax, title in zip(axes.flat, titles):
        ax.set_title(title)
        ax.set_xlabel('iteration')
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)


# The monitor's curves (PseudoLabelMonitorHook): (scalar, panel title)
MONITOR_PANELS = (('cam_mIoU', 'CAM-label mIoU on train (%)'),
                  ('pseudo_mIoU', 'pseudo-label mIoU on train (%)'))


def monitor_curves(runs: Dict) -> Dict[str, Dict[str, tuple]]:
    """Per curve name (``dupl s1``, ``dupl s2``, ``baseline s1``), the
    monitor's ``(steps, values)`` per panel key; runs without the monitor
    are left out."""
    curves = {}
    for name, run in runs.items():
        rows = read_scalars(run['cfg'].work_dir)
        for student in ('s1', 's2'):
            found = {key: series(rows, f'monitor/{student}.{key}')
                     for key, _ in MONITOR_PANELS}
            if any(steps for steps, _ in found.values()):
                curves[f'{name} {student}'] = found
    return curves


def plot_monitor(curves: Dict[str, Dict[str, tuple]], out: str) -> None:
    """CAM-label and pseudo-label mIoU on train against iteration (the
    demo's one-seed version of benchmarks/confirmation_bias.png)."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4), sharex=True)
    for label, found in curves.items():
        style = '--' if label.endswith('s2') else '-'
        for ax, (key, title) in zip(axes, MONITOR_PANELS):
            ax.plot(*found[key], style, marker='.', label=label)
            ax.set_title(title)
    for ax in axes:
        ax.set_xlabel('iteration')
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)


def monitor_summary(runs: Dict, curves: Dict[str, Dict[str, tuple]]) -> str:
    """Best and final value of each monitor curve, and what the monitor
    cost each run (its scoring seconds over the training seconds)."""
    if not curves:
        return ('No pseudo-label monitor curves in this run (trained with '
                '`--no-monitor` or reused checkpoints).')
    lines = ['| curve | CAM best | CAM final | pseudo best | pseudo final |',
             '|---|---|---|---|---|']
    for label, found in curves.items():
        cells = []
        for key, _ in MONITOR_PANELS:
            values = found[key][1]
            cells += ([f'{max(values):.1f}', f'{values[-1]:.1f}']
                      if values else ['–', '–'])
        lines.append(f'| {label} | ' + ' | '.join(cells) + ' |')
    costs = [f'{name} {run["monitor_seconds"]:.0f} s of '
             f'{run["seconds"]:.0f} s training '
             f'({_pct(run["monitor_seconds"], run["seconds"])})'
             for name, run in runs.items()
             if run.get('monitor_seconds') is not None]
    if costs:
        lines.append('\nMonitor cost: ' + ', '.join(costs) + '.')
    return '\n'.join(lines)


def first_batch(dataset, count: int = NUM_SHOWN, start: int = 0) -> dict:
    return pseudo_collate(
        [dataset[i] for i in range(start, min(start + count, len(dataset)))])


def colorize(label: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """Class ids -> RGB, 255 (ignore) -> white."""
    out = np.full(label.shape + (3, ), 255, np.uint8)
    valid = label < len(palette)
    out[valid] = palette[label[valid]]
    return out


@torch.no_grad()
def training_visuals(model, dataset, count: int = NUM_SHOWN,
                     start: int = 0) -> dict:
    """Images, CAMs, pseudo labels before/after the GMM filter and the
    removed pixels, computed as in training (final thresholds), with the
    ground truth (which training never sees) resized to the labels."""
    model.eval()
    data = model.data_preprocessor(first_batch(dataset, count, start),
                                   False)
    x, samples = data['inputs'], data['data_samples']
    stage = model.pseudo_labels(x, samples)
    cls, pseudo = stage.cls_labels, stage.pseudo
    cams = [c[0] for c in stage.cams]
    image = model.raw_images(x)
    present = cls[:, :, None, None]
    return dict(
        image=(image.permute(0, 2, 3, 1).numpy() * 255).astype(np.uint8),
        cams=[(c * present).amax(1).numpy() for c in cams],
        labels=[y.numpy() for y in pseudo.labels],
        filtered=[y.numpy() for y in pseudo.filtered],
        gt=[_resize_nearest(s.gt_sem_seg.data[0], x.shape[2:])
            for s in samples])


def _resize_nearest(label: torch.Tensor, size) -> np.ndarray:
    """``(H, W)`` label map resized (nearest) to ``size``."""
    return torch.nn.functional.interpolate(
        label[None, None].float(), size=tuple(size),
        mode='nearest')[0, 0].long().numpy()


def removal_counts(before: np.ndarray, after: np.ndarray,
                   gt: np.ndarray, ignore: int = 255) -> Dict[str, int]:
    """What the GMM filter removed, judged by the ground truth.

    Args:
        before (np.ndarray): Pseudo labels before the filter, ``(H, W)``.
        after (np.ndarray): The same after it (removed pixels = ignore).
        gt (np.ndarray): Ground truth at the same size (ignore = 255).

    Returns:
        dict: foreground pseudo-label pixels with a known truth (``fg``),
        those that were wrong (``fg_wrong``), and the removed ones that
        were wrong / right (``removed_wrong``, ``removed_right``).
    """
    fg = (before != 0) & (before != ignore) & (gt != ignore)
    wrong = fg & (before != gt)
    removed = fg & (after == ignore)
    return dict(fg=int(fg.sum()), fg_wrong=int(wrong.sum()),
                removed_wrong=int((removed & wrong).sum()),
                removed_right=int((removed & ~wrong).sum()))


def gmm_removal_stats(model, dataset, count: int,
                      batch: int = 8) -> List[Dict[str, int]]:
    """``removal_counts`` summed over the first ``count`` images, per
    student (its own pseudo labels and its own GMM fit)."""
    totals = [dict() for _ in model.students]
    for start in range(0, min(count, len(dataset)), batch):
        vis = training_visuals(model, dataset, batch, start)
        for k, total in enumerate(totals):
            for y0, y1, gt in zip(vis['labels'][k], vis['filtered'][k],
                                  vis['gt']):
                for key, value in removal_counts(y0, y1, gt).items():
                    total[key] = total.get(key, 0) + value
    return totals


def plot_grid(columns: List[tuple], out: str) -> None:
    """A figure with one row per image and one titled column per view."""
    rows = len(columns[0][1])
    fig, axes = plt.subplots(
        rows, len(columns), figsize=(2.2 * len(columns), 2.2 * rows))
    for c, (title, images, cmap) in enumerate(columns):
        for r in range(rows):
            ax = axes[r, c]
            ax.imshow(images[r], cmap=cmap, vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)


def plot_cams_and_labels(runs: Dict, dataset, out_dir: str) -> None:
    """cams.png and pseudo_labels.png from the DuPL model."""
    vis = training_visuals(runs['dupl']['runner'].model, dataset)
    palette = np.asarray(dataset.metainfo['palette'], np.uint8)
    cam_cols = [('image', vis['image'], None)]
    cam_cols += [(f'student {k} CAM', vis['cams'][k - 1], 'jet')
                 for k in (1, 2)]
    if 'baseline' in runs:
        base = training_visuals(runs['baseline']['runner'].model, dataset)
        cam_cols.append(('baseline CAM', base['cams'][0], 'jet'))
    plot_grid(cam_cols, osp.join(out_dir, 'cams.png'))
    label_cols = [('image', vis['image'], None)]
    for k in (1, 2):
        before, after = vis['labels'][k - 1], vis['filtered'][k - 1]
        label_cols += [
            (f'Y{k} before GMM', [colorize(y, palette) for y in before],
             None),
            (f'Y{k} removed by GMM\n(green: was wrong, red: was right)',
             [_mark_removed(colorize(y, palette), y, a, gt)
              for y, a, gt in zip(before, after, vis['gt'])], None)
        ]
    label_cols.append(('ground truth', [colorize(y, palette)
                                        for y in vis['gt']], None))
    plot_grid(label_cols, osp.join(out_dir, 'pseudo_labels.png'))


def _mark_removed(rgb: np.ndarray, before: np.ndarray, after: np.ndarray,
                  gt: np.ndarray, ignore: int = 255) -> np.ndarray:
    """Paint removed pixels green where the label was wrong, red where it
    was right (and grey where the truth is unknown)."""
    out = rgb.copy()
    removed = (before != ignore) & (after == ignore)
    known = gt != ignore
    out[removed & ~known] = (128, 128, 128)
    out[removed & known & (before != gt)] = (0, 200, 0)
    out[removed & known & (before == gt)] = (255, 0, 0)
    return out


@torch.no_grad()
def plot_predictions(runs: Dict, dataset, out: str) -> None:
    """Val images, ground truth and each model's prediction."""
    batch = first_batch(dataset)
    palette = np.asarray(dataset.metainfo['palette'], np.uint8)
    model = runs['dupl']['runner'].model
    data = model.data_preprocessor(batch, False)
    image = model.raw_images(data['inputs'])
    cols = [('image',
             (image.permute(0, 2, 3, 1).numpy() * 255).astype(np.uint8),
             None),
            ('ground truth', [colorize(s.gt_sem_seg.data[0].numpy(), palette)
                              for s in data['data_samples']], None)]
    variants = [('dupl', s) for s in ('s1', 's2', 'ensemble')]
    if 'baseline' in runs:
        variants.append(('baseline', 's1'))
    for name, student in variants:
        m = runs[name]['runner'].model
        m.eval()
        m.test_cfg.update(student=student, predict_on='seg')
        logits = m.encode_decode(data['inputs'], None)
        pred = logits.argmax(1).numpy()
        cols.append((f'{name} {student}', [colorize(p, palette)
                                           for p in pred], None))
    runs['dupl']['runner'].model.test_cfg.update(student='s1')
    plot_grid(cols, out)


def plot_pipeline(cfg, out: str, count: int = 3) -> None:
    """What the training pipeline feeds the model: weak and strong views,
    the crop's valid box, the image-level labels and the recorded
    weak->strong homography (no pixel labels exist in training)."""
    import random

    from mmseg.registry import DATASETS
    random.seed(1)
    np.random.seed(1)
    torch.manual_seed(1)
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    classes = dataset.metainfo['classes'][1:]
    fig, axes = plt.subplots(count, 2, figsize=(7, 3.3 * count))
    for row in range(count):
        sample = dataset[row]
        weak_meta = sample['data_samples']['weak'].metainfo
        strong_meta = sample['data_samples']['strong'].metainfo
        for col, branch in enumerate(('weak', 'strong')):
            img = sample['inputs'][branch].numpy()[::-1].transpose(1, 2, 0)
            axes[row, col].imshow(img)
            axes[row, col].set_xticks([])
            axes[row, col].set_yticks([])
        r0, r1, c0, c1 = weak_meta['img_box']
        axes[row, 0].add_patch(plt.Rectangle(
            (c0 - .5, r0 - .5), c1 - c0, r1 - r0, fill=False, ec='lime'))
        names = [classes[i] for i in np.flatnonzero(weak_meta['cls_labels'])]
        axes[row, 0].set_title(
            f"weak view, labels: {', '.join(names)}\n"
            f'valid box (green) rows {r0}:{r1} cols {c0}:{c1}', fontsize=7)
        h = np.round(strong_meta['homography_matrix'], 3).tolist()
        ops = ', '.join(n for n, _ in strong_meta['strong_aug_ops'])
        axes[row, 1].set_title(f'strong view: {ops}\nH = {h}', fontsize=6)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)


FIGURES = ('seg_s1', 'seg_s2', 'seg_ensemble', 'cam_train', 'pseudo_train')
MODEL_NAMES = dict(dupl='DuPL (2 students)',
                   baseline='single-student baseline',
                   fully_supervised='fully supervised reference (GT masks, '
                   'not WSSS)')
SHORT_NAMES = dict(dupl='DuPL', baseline='baseline',
                   fully_supervised='fully supervised')


def metrics_table(runs: Dict) -> str:
    """The mIoU table of the report and the README."""
    head = ('| model | seg s1 | seg s2 | seg ensemble | CAM (train) | '
            'pseudo label (train) | train time |\n'
            '|---|---|---|---|---|---|---|\n')
    lines = []
    for name, run in runs.items():
        m = run['metrics']
        cells = [f"{m[k]['mIoU']:.1f}" if k in m else '–' for k in FIGURES]
        lines.append(f'| {MODEL_NAMES[name]} | ' + ' | '.join(cells) +
                     f" | {run['seconds'] / 60:.1f} min |")
    return head + '\n'.join(lines)


def per_class_table(runs: Dict, classes: List[str]) -> str:
    """IoU per class (rows) for every model and figure (columns)."""
    cols = [(name, key) for name, run in runs.items() for key in FIGURES
            if key in run['metrics']]
    head = '| class | ' + ' | '.join(
        f"{SHORT_NAMES[n]} {k.replace('_', ' ')}"
        for n, k in cols) + ' |\n|---' + '|---' * len(cols) + '|\n'
    rows = [
        f'| {cls} | ' + ' | '.join(
            f"{runs[n]['metrics'][k]['IoU'][i]:.1f}" for n, k in cols) + ' |'
        for i, cls in enumerate(classes)
    ]
    return head + '\n'.join(rows)


def removal_table(stats: List[Dict[str, int]], count: int) -> str:
    """The GMM filter's removals per student, judged by the ground truth."""
    head = ('| student | fg pseudo-label pixels | wrong before filter | '
            'removed | removed that were wrong | removed that were right | '
            'wrong after filter |\n|---|---|---|---|---|---|---|\n')
    rows = []
    for k, st in enumerate(stats, start=1):
        removed = st['removed_wrong'] + st['removed_right']
        left = st['fg'] - removed
        rows.append(
            f"| s{k} | {st['fg']} | {_pct(st['fg_wrong'], st['fg'])} | "
            f"{removed} ({_pct(removed, st['fg'])}) | "
            f"{st['removed_wrong']} ({_pct(st['removed_wrong'], removed)}) "
            f"| {st['removed_right']} "
            f"({_pct(st['removed_right'], removed)}) | "
            f"{_pct(st['fg_wrong'] - st['removed_wrong'], left)} |")
    return (f'The first {count} train images, pseudo labels of the final '
            'models:\n\n' + head + '\n'.join(rows))


def _pct(part: int, whole: int) -> str:
    return f'{100.0 * part / whole:.1f} %' if whole else '–'


def benchmark_lead(path: str) -> str:
    """The seeds benchmark's DuPL - baseline line and its fully supervised
    reference line, if it has been run."""
    if not osp.isfile(path):
        return ('The seeds benchmark (`benchmarks/bench_demo_seeds.py`) has '
                'not been run here; see `benchmarks/RESULTS.md` for the '
                'spread over seeds.')
    with open(path) as f:
        summary = json.load(f)
    return ' '.join(s for s in (summary['lead_sentence'],
                                summary.get('reference_sentence')) if s)


def write_report(runs: Dict, work_dir: str, removal_images: int = 64,
                 bench_summary: str = BENCH_SUMMARY) -> Dict:
    """Write every figure and ``report.md``; return the tables."""
    cfg = runs['dupl']['cfg']
    from mmseg.registry import DATASETS
    train_cfg = cfg.test_dataloader.dataset.copy()
    train_cfg.update(
        ann_file='ImageSets/Segmentation/train.txt', test_mode=True)
    train_set = DATASETS.build(train_cfg)
    val_set = DATASETS.build(cfg.test_dataloader.dataset)
    plot_pipeline(cfg, osp.join(work_dir, 'pipeline.png'))
    plot_curves(runs, osp.join(work_dir, 'curves.png'))
    plot_cams_and_labels(runs, train_set, work_dir)
    plot_predictions(runs, val_set, osp.join(work_dir, 'predictions.png'))
    curves = monitor_curves(runs)
    if curves:
        plot_monitor(curves, osp.join(work_dir, 'monitor.png'))
    removal_images = min(removal_images, len(train_set))
    removal = gmm_removal_stats(runs['dupl']['runner'].model, train_set,
                                removal_images)
    tables = dict(
        table=metrics_table(runs),
        per_class=per_class_table(runs, list(val_set.metainfo['classes'])),
        removal=removal_table(removal, removal_images),
        lead=benchmark_lead(bench_summary),
        monitor=monitor_summary(runs, curves))
    backbone = cfg.model.student.backbone
    with open(osp.join(work_dir, 'report.md'), 'w') as f:
        f.write(REPORT.format(
            iters=cfg.train_cfg.max_iters,
            batch=cfg.train_dataloader.batch_size,
            layers=backbone.arch.num_layers,
            dims=backbone.arch.embed_dims,
            images=train_images_phrase(cfg.train_dataloader.dataset.pipeline),
            **tables))
    return dict(tables, removal_stats=removal)


def train_images_phrase(pipeline: List[dict]) -> str:
    """What the training pipeline feeds: whole resized images or crops."""
    crop = next(t['crop_size'] for t in pipeline
                if t['type'] == 'RandomCropWithValidBox')
    if any(t['type'] == 'Resize' for t in pipeline):
        return f'whole images resized to {crop}x{crop}'
    return f'{crop} px crops'


REPORT = """# DuPL demo on the toy dataset

Trained on the CPU with `configs/dupl_vit-tiny_toy.py` ({iters} iterations,
batch {batch}, {images}, a {layers}-layer {dims}-d ViT whose backbone
starts from `tools/pretrain_toy_backbone.py`'s classification weights, the toy
stand-in for ImageNet) and, next to it, the single-student baseline
`configs/baseline_single-student_vit-tiny_toy.py` (one student from the same
weights, fixed threshold 0.7, no GMM filter, no consistency loss, no
discrepancy loss) on the same schedule, and the fully supervised reference
`configs/fully-supervised_vit-tiny_toy.py` (the same network, weights,
training images and schedule as mmseg's EncoderDecoder on the ground-truth
masks: not weakly supervised, the bound of both). mIoU (%) by mmseg's
IoUMetric: segmentation on the toy val split (student 1, student 2, their
logit mean), CAM labels and PAR-refined pseudo labels of student 1 on the
train split with the image-level labels.

{table}

{lead}

## IoU per class (%)

{per_class}

## What the GMM filter removed

The filter runs on each student's own pseudo labels (algorithm.md §8); the
ground
truth, which training never sees, tells which removed pixels were wrong.
{removal}

## Pseudo-label quality over training

`PseudoLabelMonitorHook` scored, on a fixed set of train images with
masks, the labels training would use at each report: the CAM labels (eval
rule) and the pseudo labels before the GMM filter, on the pixels they label
(`monitor.png`; one seed: `benchmarks/bench_confirmation_bias.py` asks the
same question over seeds in a regime where the backbone adapts).

{monitor}

## Figures

- `pipeline.png`: what training feeds the model: the weak view with the
  crop's valid box and the image-level labels, and the strong view with its
  photometric ops and the recorded weak->strong homography.
- `curves.png`: training loss, val mIoU over training, the cosine threshold,
  and the fraction of foreground pseudo-label pixels the GMM filter removed.
- `cams.png`: multi-scale CAMs (max over the image's classes) of both
  students and of the baseline on train images.
- `pseudo_labels.png`: each student's pseudo labels before the GMM filter
  and the pixels it removed (green: the label was wrong, red: it was right,
  grey: no ground truth there; white = uncertain, 255), with the ground
  truth.
- `predictions.png`: val predictions of each student, the ensemble and the
  baseline against the ground truth.
- `monitor.png`: CAM-label and pseudo-label mIoU on train against
  iteration (the monitor), DuPL's two students and the baseline.

![pipeline](pipeline.png)
![curves](curves.png)
![cams](cams.png)
![pseudo labels](pseudo_labels.png)
![predictions](predictions.png)
![monitor](monitor.png)

## What this does and does not show

It shows the whole method running end to end on real files through mmseg's
Runner: both students, their CAMs, cross pseudo-supervision, the descending
threshold, the GMM filter and the consistency loss switching on at their
iterations, and evaluation with mmseg's metric. The numbers come from one
seed of a tiny model on synthetic scenes; the benchmark line above gives
the spread over seeds and datasets. It says nothing about PASCAL VOC or COCO
accuracy: those need the DeiT-B configs, ImageNet weights and a GPU (the
paper reports 69.9 / 72.2 mIoU on VOC val, single-scale / multi-scale + CRF).
"""
