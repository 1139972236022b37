# Copyright (c) OpenMMLab. All rights reserved.
"""tools/run_demo.py: DuPL and the baseline trained in one process."""
import glob
import importlib.util
import json
import os.path as osp

import numpy as np
import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(REPO, 'tools', 'run_demo.py')


def _tool():
    spec = importlib.util.spec_from_file_location('run_demo', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _scalar_rows(work_dir: str) -> list:
    paths = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    assert len(paths) == 1, paths
    with open(paths[0]) as f:
        return [json.loads(line) for line in f if line.strip()]


def test_two_runners_in_one_process_keep_separate_scalars(
        toy_data_root, tmp_path, monkeypatch):
    """mmengine's Visualizer is a named process-wide instance: with one
    fixed name the second Runner reused the first one's, and the
    baseline's scalars landed in the DuPL run's scalars.json. The DuPL
    run also carries the demo's pseudo-label monitor (its curves feed the
    report's monitor.png)."""
    demo = _tool()
    # the demo's monitor, reporting at the start and after the last of the
    # 4 iterations on 2 images
    monkeypatch.setattr(demo, 'DEMO_MONITOR', dict(
        demo.DEMO_MONITOR, interval=4, num_images=2, batch_size=2))
    runs = {}
    for name, config in (('dupl', demo.DUPL_CONFIG),
                         ('baseline', demo.BASELINE_CONFIG)):
        # DuPL's phases need >= 4 iterations
        cfg = demo.load_config(config, toy_data_root,
                               str(tmp_path / name), iters=4)
        cfg.model.student.backbone.init_cfg = None
        cfg.train_dataloader.update(
            batch_size=2, num_workers=0, persistent_workers=False)
        if name == 'dupl':
            demo.add_monitor(cfg)  # reads the val pipeline when it starts
            cfg.custom_hooks[-1]['pipeline'] = \
                cfg.val_dataloader.dataset.pipeline
        demo.skip_in_run_validation(cfg)  # as the demo does
        cfg.default_hooks.logger.interval = 1
        runs[name] = dict(demo.train(cfg), cfg=cfg)
    runners = {name: run['runner'] for name, run in runs.items()}
    assert runners['dupl'].visualizer is not runners['baseline'].visualizer
    assert demo.monitor_seconds(runners['dupl']) > 0
    assert demo.monitor_seconds(runners['baseline']) is None
    dupl = _scalar_rows(str(tmp_path / 'dupl'))
    baseline = _scalar_rows(str(tmp_path / 'baseline'))
    # one row per iteration each, the baseline's without a second student
    assert [r['step'] for r in dupl if 'loss' in r] == [1, 2, 3, 4]
    assert [r['step'] for r in dupl
            if 'monitor/s1.cam_mIoU' in r] == [0, 4]
    assert [r['step'] for r in baseline] == [1, 2, 3, 4]
    # no validation at the last iteration (the demo evaluates afterwards)
    assert not any('mIoU' in r or 's1.seg_mIoU' in r
                   for r in dupl + baseline)
    # --reuse-checkpoints: the final checkpoint, and the state its last
    # iteration trained with (the report labels with it; no hook ran)
    reused = demo.train(runs['dupl']['cfg'], reuse=True)
    assert reused['reused']
    assert reused['runner'].model.phase_state().iteration == 3
    import demo_report  # tools/ is on sys.path once run_demo is loaded
    curves = demo_report.monitor_curves(runs)
    assert sorted(curves) == ['dupl s1', 'dupl s2']
    assert curves['dupl s2']['cam_mIoU'][0] == (0, 4)
    assert all('s2.loss_cls' in r for r in dupl if 'loss' in r)
    assert not any('s2.loss_cls' in r or 'loss_disc' in r for r in baseline)


def _labels(model, dataset, field: str, **test_cfg) -> list:
    from mmengine.dataset import pseudo_collate
    saved = dict(model.test_cfg)
    model.test_cfg.update(test_cfg)
    try:
        return [model.test_step(pseudo_collate([dataset[i]]))[0]
                .get(field).data for i in range(len(dataset))]
    finally:
        model.test_cfg.clear()
        model.test_cfg.update(saved)


def test_one_pseudo_pass_gives_the_cam_labels_of_a_cam_pass(toy_checkpoint):
    """evaluate_all scores CAM and pseudo labels on train from one
    pseudo-label pass: its ``cam_sem_seg`` must be, pixel for pixel, what
    ``predict_on='cam'`` predicts (same scales, flips and threshold), for
    one student and for the ensemble; the figures equal two passes'."""
    from mmengine.config import Config
    from mmengine.runner import load_checkpoint
    from mmseg.registry import MODELS
    demo = _tool()
    cfg = Config.fromfile(toy_checkpoint['config'])
    # as the demo's runner builds it (mmseg's init_model drops train_cfg,
    # and with it the toy schedule the pseudo labels follow)
    model = MODELS.build(cfg.model)
    load_checkpoint(model, toy_checkpoint['checkpoint'], map_location='cpu')
    model.follow_schedule(cfg.train_cfg.max_iters - 1)  # as after training
    train_set = demo.split_dataset(cfg, 'ImageSets/Segmentation/train.txt')
    train_set = train_set.get_subset(4)
    _one_student_labels_equal_the_full_stage(model, train_set)
    for student in ('s1', 'ensemble'):
        one_pass = _labels(model, train_set, 'cam_sem_seg',
                           predict_on='pseudo', student=student)
        cam_pass = _labels(model, train_set, 'pred_sem_seg',
                           predict_on='cam', student=student)
        for a, b in zip(one_pass, cam_pass):
            assert torch.equal(a, b), student
    both = demo.evaluate_all(model, train_set, train_set, ['s1'])
    # assert_equal: absent classes are nan in both
    np.testing.assert_equal(both['cam_train'], demo.evaluate(
        model, train_set, predict_on='cam', student='s1'))
    np.testing.assert_equal(both['pseudo_train'], demo.evaluate(
        model, train_set, predict_on='pseudo', student='s1'))
    assert both['cam_train']['mIoU'] != both['pseudo_train']['mIoU']


def _one_student_labels_equal_the_full_stage(model, dataset) -> None:
    """predict_on='pseudo' for one student runs the labelling stage with
    that student only: its labels and CAMs equal the two-student stage's."""
    import dataclasses

    from mmengine.dataset import pseudo_collate
    state = dataclasses.replace(model.phase_state(), gmm_filter=False)
    for i in range(len(dataset)):
        data = model.data_preprocessor(pseudo_collate([dataset[i]]), False)
        with torch.no_grad():
            full = model.pseudo_labels(data['inputs'], data['data_samples'],
                                       state)
            for k, student in enumerate(('s1', 's2')):
                model.test_cfg['student'] = student
                labels, cam = model._pseudo_predict(data['inputs'],
                                                    data['data_samples'])
                assert torch.equal(labels, full.pseudo.labels[k]), student
                assert torch.equal(cam, full.cams[k][0]), student
    model.test_cfg['student'] = 's1'
