# Copyright (c) OpenMMLab. All rights reserved.
"""tools/test.py evaluates every DuPL output on the session toy checkpoint.

The variants run in-process through ``Runner.from_cfg`` (what tools/test.py
does after parsing its arguments), built once per module; two real
subprocess runs cover the CLI: ``--tta --out --show-dir`` on the labelled
val split, and a test split without labels (as VOC test).
"""
import glob
import importlib.util
import os.path as osp
import re
import subprocess
import sys

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.runner import Runner
from PIL import Image

import mmseg_dupl.models.tta  # noqa: F401 (registers the TTA models)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TEST_TOOL = osp.join(REPO, 'tools', 'test.py')
TRAIN_SPLIT = 'ImageSets/Segmentation/train.txt'
NO_WORKERS = {
    'test_dataloader.num_workers': 0,
    'test_dataloader.persistent_workers': False,
}
NO_WORKERS_CLI = [f'{k}={v}' for k, v in NO_WORKERS.items()]

# sliding windows smaller than the 128 px test images
SLIDE = {
    'model.test_cfg.mode': 'slide',
    'model.test_cfg.crop_size': (64, 64),
    'model.test_cfg.stride': (48, 48),
}
# name -> (cfg options, whether to swap in the VOC protocol TTA model)
VARIANTS = {
    's1': ({}, False),
    's2': ({
        'model.test_cfg.student': 's2'
    }, False),
    'ensemble': ({
        'model.test_cfg.student': 'ensemble'
    }, False),
    'seg_train': ({
        'test_dataloader.dataset.ann_file': TRAIN_SPLIT
    }, False),
    'cam_train': ({
        'model.test_cfg.predict_on': 'cam',
        'test_dataloader.dataset.ann_file': TRAIN_SPLIT
    }, False),
    'pseudo_train': ({
        'model.test_cfg.predict_on': 'pseudo',
        'test_dataloader.dataset.ann_file': TRAIN_SPLIT
    }, False),
    's1_crf': ({
        'test_evaluator.type': 'CRFIoUMetric',
        'test_evaluator.num_workers': 2
    }, False),
    's1_tta': ({
        'tta_model.type': 'VOCProtocolTTAModel'
    }, True),
    's1_slide': (SLIDE, False),
    's1_slide_tta': ({
        **SLIDE, 'tta_model.type': 'VOCProtocolTTAModel'
    }, True),
}


def build_cfg(toy: dict, work_dir: str, name: str, options: dict,
              tta: bool) -> Config:
    """The config tools/test.py would build for ``CONFIG CKPT [--tta]
    --cfg-options ...``."""
    cfg = Config.fromfile(toy['config'])
    cfg.merge_from_dict({**NO_WORKERS, **options})
    cfg.work_dir = work_dir
    cfg.experiment_name = f'test_tool_{name}'
    cfg.load_from = toy['checkpoint']
    if tta:  # as tools/test.py --tta
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
        cfg.tta_model.module = cfg.model
        cfg.model = cfg.tta_model
    return cfg


def run_variants(toy: dict, work_dir: str) -> dict:
    """``{variant: metrics}`` of every variant of :data:`VARIANTS`."""
    results = {}
    for name, (options, tta) in VARIANTS.items():
        cfg = build_cfg(toy, osp.join(work_dir, name), name, options, tta)
        results[name] = Runner.from_cfg(cfg).test()
    return results


def parse_miou(log: str) -> float:
    """The mIoU of the ``Iter(test)`` summary line."""
    found = re.findall(r'Iter\(test\).*?mIoU: ([0-9.]+)', log)
    assert found, log[-3000:]
    return float(found[-1])


@pytest.fixture(scope='module')
def metrics(toy_checkpoint, tmp_path_factory) -> dict:
    return run_variants(toy_checkpoint,
                        str(tmp_path_factory.mktemp('test_tool')))


def test_every_output_is_scored(metrics):
    for name, result in metrics.items():
        assert 0 <= result['mIoU'] <= 100, (name, result)
        assert 0 <= result['aAcc'] <= 100, (name, result)


def test_variants_differ_where_they_should(metrics):
    miou = {k: v['mIoU'] for k, v in metrics.items()}
    assert miou['s1'] != miou['s2']
    # same split, different outputs of the model
    assert miou['cam_train'] != miou['seg_train']
    assert miou['pseudo_train'] != miou['cam_train']
    # CRF and the multi-scale protocol change the s1 predictions
    assert miou['s1_crf'] != miou['s1']
    assert miou['s1_tta'] != miou['s1']
    # test_cfg.mode='slide' is applied, with and without --tta
    assert miou['s1_slide'] != miou['s1']
    assert miou['s1_slide_tta'] != miou['s1_tta']


def run_tool(args: list, cwd: str) -> str:
    proc = subprocess.run(
        [sys.executable, TEST_TOOL] + args,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    return log


TTA_CFG = """
_base_ = [{base!r}]
custom_imports = dict(
    imports=['mmseg_dupl', 'mmpretrain.models', 'mmseg_dupl.models.tta'],
    allow_failed_imports=False)
tta_model = dict(type='VOCProtocolTTAModel')
"""


def test_cli_tta_out_and_show_dir(toy_checkpoint, metrics, tmp_path):
    """--tta with the VOC protocol, --out and --show-dir in one CLI run."""
    out, show = tmp_path / 'out', tmp_path / 'show'
    cfg = tmp_path / 'toy_voc_protocol.py'
    cfg.write_text(TTA_CFG.format(base=toy_checkpoint['config']))
    log = run_tool(
        [
            str(cfg),
            toy_checkpoint['checkpoint'],
            '--tta',
            '--out',
            str(out),
            '--show-dir',
            str(show),
            '--work-dir',
            str(tmp_path / 'work'),
            '--cfg-options',
            'default_hooks.visualization.interval=1'  # mmseg's default: 50
        ] + NO_WORKERS_CLI,
        REPO)
    assert parse_miou(log) == pytest.approx(
        metrics['s1_tta']['mIoU'], abs=0.01)
    val = osp.join(toy_checkpoint['data_root'], 'ImageSets', 'Segmentation',
                   'val.txt')
    names = open(val).read().split()
    pngs = sorted(out.glob('*.png'))
    assert [p.stem for p in pngs] == sorted(names)
    for png in pngs:
        ids = np.array(Image.open(png))
        image = Image.open(
            osp.join(toy_checkpoint['data_root'], 'JPEGImages',
                     png.stem + '.jpg'))
        assert ids.shape == image.size[::-1]  # native resolution
        assert ids.max() <= 5
    shown = glob.glob(str(show / '**' / '*.png'), recursive=True)
    assert len(shown) == len(names)


UNLABELLED_CFG = """
_base_ = [{base!r}]
test_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        ann_file='ImageSets/Segmentation/test.txt',
        with_seg_map=False,
        cls_label_file=None,
        pipeline=[
            dict(type='LoadCheckedImageFromFile'),
            dict(type='Resize', scale=(128, 128), keep_ratio=False),
            dict(type='PackWSSSInputs'),
        ]))
test_evaluator = dict(
    type='CRFIoUMetric', num_workers=2, format_only=True,
    output_dir={out!r})
"""


def test_cli_unlabelled_test_split(toy_checkpoint, tmp_path):
    """Predictions of a split without masks (as VOC test) are written
    (here with DenseCRF), and convert to the server layout."""
    out = tmp_path / 'pred'
    cfg = tmp_path / 'toy_test_split.py'
    cfg.write_text(
        UNLABELLED_CFG.format(base=toy_checkpoint['config'], out=str(out)))
    run_tool([
        str(cfg), toy_checkpoint['checkpoint'], '--work-dir',
        str(tmp_path / 'work')
    ], REPO)
    split = osp.join(toy_checkpoint['data_root'], 'ImageSets', 'Segmentation',
                     'test.txt')
    names = open(split).read().split()
    assert sorted(p.stem for p in out.glob('*.png')) == sorted(names)
    spec = importlib.util.spec_from_file_location(
        'convert_voc', osp.join(REPO, 'tools', 'convert_voc_test_results.py'))
    convert = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(convert)
    written = convert.convert(str(out), str(tmp_path / 'sub'), split)
    assert len(written) == len(names)
