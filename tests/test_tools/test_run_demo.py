# Copyright (c) OpenMMLab. All rights reserved.
"""tools/run_demo.py: DuPL and the baseline trained in one process."""
import glob
import importlib.util
import json
import os.path as osp

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
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
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
