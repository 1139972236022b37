# Copyright (c) OpenMMLab. All rights reserved.
"""The demo: train DuPL and a single-student baseline on the toy dataset
(CPU) from the pretrained toy backbone (built and cached by
tools/pretrain_toy_backbone.py on the first run), evaluate both, and write
``WORK_DIR/report.md`` with figures. A fully supervised reference (the
same network and budget trained on the ground-truth masks, not weakly
supervised) shows what perfect labels reach.

    python tools/run_demo.py --data-root data/toy_voc --work-dir work_dirs/demo
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import time
from typing import Dict, List, Sequence

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from torch.utils.data import DataLoader

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))  # demo_report

from demo_report import write_report  # noqa: E402

from mmseg_dupl.engine.runners import build_runner  # noqa: E402
# benchmarks/bench_demo_seeds.py scales through run_demo.scale_schedule
from mmseg_dupl.engine.schedule_scaling import scale_schedule  # noqa: E402,F401

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DUPL_CONFIG = osp.join(REPO, 'configs', 'dupl_vit-tiny_toy.py')
BASELINE_CONFIG = osp.join(REPO, 'configs',
                           'baseline_single-student_vit-tiny_toy.py')
# Not weakly supervised: the bound of the two above (ground-truth masks).
FULLY_SUPERVISED_CONFIG = osp.join(REPO, 'configs',
                                   'fully-supervised_vit-tiny_toy.py')
# The demo's models: config and the students evaluated (none: an mmseg
# segmentor, seg only). benchmarks/bench_demo_seeds.py trains the same.
DEMO_MODELS = dict(
    dupl=(DUPL_CONFIG, ['s1', 's2', 'ensemble']),
    baseline=(BASELINE_CONFIG, ['s1']),
    fully_supervised=(FULLY_SUPERVISED_CONFIG, []))
# The pseudo-label monitor on the two WSSS runs (issue 22): the CAM-label
# and pseudo-label mIoU of 16 train images every 50 iterations, the
# report's monitor.png; it costs a few percent of the training time (the
# report states the measured share).
DEMO_MONITOR = dict(type='PseudoLabelMonitorHook', interval=50,
                    num_images=16)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--data-root', default='data/toy_voc')
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument(
        '--iters', type=int, default=None,
        help='training iterations (default: the toy config\'s)')
    parser.add_argument(
        '--pretrained', default=None,
        help='pretrained toy backbone to build or reuse (default: the '
        "config's, checkpoints/toy_vit_cls.pth)")
    parser.add_argument(
        '--skip-baseline', action='store_true',
        help='train DuPL only (the report then has no baseline column)')
    parser.add_argument(
        '--skip-reference', action='store_true',
        help='do not train the fully supervised reference')
    parser.add_argument(
        '--no-monitor', action='store_true',
        help='train without the pseudo-label monitor (no monitor.png)')
    parser.add_argument(
        '--reuse-checkpoints', action='store_true',
        help='load the final checkpoints of an earlier demo in WORK_DIR '
        'instead of training again (re-evaluates and redraws the report)')
    return parser.parse_args()


def ensure_pretrained(cfg: Config, extra_args: Sequence[str] = ()) -> float:
    """Build the toy backbone's pretrained checkpoint the config loads, or
    reuse the cached one (the backbone pretrained is the one of the
    config's file; ``extra_args`` go to tools/pretrain_toy_backbone.py,
    e.g. ``('--img-size', '96')``); return the seconds it took."""
    checkpoint = cfg.model.student.backbone.init_cfg.checkpoint
    start = time.time()
    subprocess.run([
        sys.executable,
        osp.join(REPO, 'tools', 'pretrain_toy_backbone.py'), '--out',
        checkpoint, '--dupl-config', cfg.filename, *extra_args
    ], check=True)
    return time.time() - start


def set_pretrained(cfg: Config, checkpoint: str) -> None:
    """Point the config's backbone at ``checkpoint``: a DuPL config's
    students, or an mmseg EncoderDecoder's backbone."""
    cfg.model.get('student', cfg.model).backbone.init_cfg.checkpoint = \
        checkpoint


def load_config(path: str, data_root: str, work_dir: str,
                iters: int = None, pretrained: str = None) -> Config:
    """The toy config pointed at ``data_root``, with a progress bar."""
    cfg = Config.fromfile(path)
    cfg.work_dir = work_dir
    if pretrained:
        set_pretrained(cfg, pretrained)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = data_root
    cfg.custom_hooks = list(cfg.get('custom_hooks', [])) + [
        dict(type='ProgressBarHook')
    ]
    cfg.default_hooks.logger.interval = 50
    if iters is not None:
        scale_schedule(cfg, iters)
    return cfg


def skip_in_run_validation(cfg: Config) -> None:
    """No validation inside ``runner.train()``: the demo evaluates every
    model itself right after training (:func:`evaluate_all`: each student,
    the ensemble, CAM and pseudo labels on train), and mmengine's
    validation at the last iteration (whatever ``val_interval`` says)
    would repeat its seg pass. ``val_begin`` past the end turns it off."""
    cfg.train_cfg.val_begin = cfg.train_cfg.max_iters + 1


def add_monitor(cfg: Config) -> None:
    """Put ``DEMO_MONITOR`` into a DuPL config's ``custom_hooks``."""
    cfg.custom_hooks = list(cfg.custom_hooks) + [dict(DEMO_MONITOR)]


def monitor_seconds(runner) -> float:
    """Seconds the run's PseudoLabelMonitorHook spent (None without one)."""
    for hook in runner.hooks:
        if type(hook).__name__ == 'PseudoLabelMonitorHook':
            return hook.seconds
    return None


def train(cfg: Config, reuse: bool = False) -> Dict:
    """Train with mmengine's Runner; return the runner and the wall time.

    With ``reuse`` and a final checkpoint of an earlier run in the work
    dir, load it instead (and the wall time that run recorded).
    """
    ckpt = osp.join(cfg.work_dir, f'iter_{cfg.train_cfg.max_iters}.pth')
    timing = osp.join(cfg.work_dir, 'train_seconds.json')
    if reuse and osp.isfile(ckpt) and osp.isfile(timing):
        cfg.load_from = ckpt
        runner = build_runner(cfg)
        runner.load_or_resume()
        if hasattr(runner.model, 'follow_schedule'):
            # the state the last iteration trained with, as after training
            # (no schedule hook ran: the report labels with this state)
            runner.model.follow_schedule(cfg.train_cfg.max_iters - 1)
        with open(timing) as f:
            return dict(runner=runner, seconds=json.load(f)['seconds'],
                        reused=True)
    runner = build_runner(cfg)
    start = time.time()
    runner.train()
    seconds = time.time() - start
    with open(timing, 'w') as f:
        json.dump(dict(seconds=seconds), f)
    return dict(runner=runner, seconds=seconds)


def split_dataset(cfg: Config, ann_file: str):
    """A test-mode dataset (test pipeline, masks loaded) for a split."""
    from mmseg.registry import DATASETS
    dataset_cfg = cfg.test_dataloader.dataset.copy()
    dataset_cfg.ann_file = ann_file
    dataset_cfg.test_mode = True
    return DATASETS.build(dataset_cfg)


@torch.no_grad()
def evaluate_fields(model, dataset, fields: Sequence[str],
                    **test_cfg) -> Dict[str, Dict]:
    """mmseg's IoUMetric over ``dataset`` with ``model.test_cfg`` updated,
    one metric per predicted label field, from one pass.

    Args:
        model: The segmentor.
        dataset: A test-mode dataset (masks loaded).
        fields (Sequence[str]): Label fields of the predictions, e.g.
            ``pred_sem_seg`` and, for ``predict_on='pseudo'``,
            ``cam_sem_seg``.
        **test_cfg: ``model.test_cfg`` keys for this pass.

    Returns:
        dict: Per field, ``mIoU`` and ``IoU`` (per class, in the dataset's
        order), %.
    """
    from mmseg.evaluation import IoUMetric
    saved = dict(model.test_cfg)
    model.test_cfg.update(test_cfg)
    metrics = {field: IoUMetric(iou_metrics=['mIoU']) for field in fields}
    for metric in metrics.values():
        metric.dataset_meta = dataset.metainfo
    loader = DataLoader(dataset, batch_size=1, collate_fn=pseudo_collate)
    model.eval()
    for batch in loader:
        outputs = [s.to_dict() for s in model.test_step(batch)]
        for field, metric in metrics.items():
            # IoUMetric scores ``pred_sem_seg``: hand it this field's maps
            metric.process(batch, [dict(o, pred_sem_seg=o[field])
                                   for o in outputs])
    model.test_cfg.clear()
    model.test_cfg.update(saved)
    return {field: _scores(metric) for field, metric in metrics.items()}


def _scores(metric) -> Dict:
    """``mIoU`` and per-class ``IoU`` (%) of a processed IoUMetric.
    IoUMetric.compute_metrics only returns the mean; the same areas give
    the per-class figures through its own total_area_to_metrics."""
    areas = [sum(r) for r in zip(*metric.results)]
    per_class = metric.total_area_to_metrics(*areas, ['mIoU'])['IoU']
    iou = [round(float(v) * 100, 2) for v in per_class]
    return dict(mIoU=round(float(np.nanmean(iou)), 2), IoU=iou)


def evaluate(model, dataset, **test_cfg) -> Dict:
    """:func:`evaluate_fields` of ``pred_sem_seg`` alone."""
    return evaluate_fields(model, dataset, ['pred_sem_seg'],
                           **test_cfg)['pred_sem_seg']


def evaluate_all(model, val_set, train_set, students: List[str]) -> Dict:
    """Seg IoU per student on val; CAM and pseudo-label IoU of student 1 on
    train, both from one pseudo-label pass (its ``cam_sem_seg`` is what
    ``predict_on='cam'`` predicts when train and test ``cam_scales`` agree,
    as in the demo's configs; otherwise a CAM pass of its own). Without
    ``students`` (an mmseg segmentor such as the fully supervised
    reference: no students, CAMs or pseudo labels), seg on val only, as
    ``seg_s1``."""
    if not students:
        return dict(seg_s1=evaluate(model, val_set))
    results = {}
    for student in students:
        results[f'seg_{student}'] = evaluate(
            model, val_set, predict_on='seg', student=student)
    if tuple(model.train_cfg['cam_scales']) == tuple(
            model.test_cfg['cam_scales']):
        labels = evaluate_fields(model, train_set,
                                 ['cam_sem_seg', 'pred_sem_seg'],
                                 predict_on='pseudo', student='s1')
        results['cam_train'] = labels['cam_sem_seg']
        results['pseudo_train'] = labels['pred_sem_seg']
        return results
    results['cam_train'] = evaluate(
        model, train_set, predict_on='cam', student='s1')
    results['pseudo_train'] = evaluate(
        model, train_set, predict_on='pseudo', student='s1')
    return results


def main() -> None:
    args = parse_args()
    start = time.time()
    work_dir = osp.abspath(args.work_dir)
    os.makedirs(work_dir, exist_ok=True)
    pretrain_seconds = ensure_pretrained(
        load_config(DUPL_CONFIG, args.data_root, work_dir, None,
                    args.pretrained))
    runs = {}
    skipped = {'baseline': args.skip_baseline,
               'fully_supervised': args.skip_reference}
    plan = [(name, *model) for name, model in DEMO_MODELS.items()
            if not skipped.get(name)]
    for name, path, students in plan:
        print(f'\n=== training {name} ({osp.relpath(path, REPO)}) ===')
        cfg = load_config(path, args.data_root, osp.join(work_dir, name),
                          args.iters, args.pretrained)
        skip_in_run_validation(cfg)
        if students and not args.no_monitor:
            add_monitor(cfg)
        run = train(cfg, args.reuse_checkpoints)
        run['monitor_seconds'] = None if run.get('reused') else \
            monitor_seconds(run['runner'])
        model = run['runner'].model
        val_set = split_dataset(cfg, cfg.val_dataloader.dataset.ann_file)
        train_set = split_dataset(cfg, 'ImageSets/Segmentation/train.txt')
        print(f'=== evaluating {name} ===')
        run['metrics'] = evaluate_all(model, val_set, train_set, students)
        run['cfg'] = cfg
        runs[name] = run
    report = write_report(runs, work_dir)
    with open(osp.join(work_dir, 'metrics.json'), 'w') as f:
        json.dump({k: dict(v['metrics'], seconds=v['seconds'])
                   for k, v in runs.items()}, f, indent=2)
    for key in ('table', 'lead', 'per_class', 'removal', 'monitor'):
        print('\n' + report[key])
    print(f'\npretraining (or its cache check): {pretrain_seconds:.0f} s; '
          f'whole demo: {(time.time() - start) / 60:.1f} min')
    print(f'report: {osp.join(work_dir, "report.md")}')


if __name__ == '__main__':
    main()
