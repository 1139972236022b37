# Copyright (c) OpenMMLab. All rights reserved.
"""tools/make_toy_voc.py --layout coco writes the COCO WSSS layout, and the
COCO config (configs/dupl_vit-b_coco.py: COCOWSSSDataset, its phase
order, thresholds and protocol TTA), shrunk to the toy network, trains on
it through every phase and tests with --tta."""
import os
import os.path as osp
import re
import subprocess
import sys

import pytest
from conftest import TOY_CONFIG
from mmengine.config import Config
from stock_config_utils import REPO, run_train

import mmseg_dupl  # noqa: F401
from mmseg.registry import DATASETS

COCO_CONFIG = osp.join(REPO, 'configs', 'dupl_vit-b_coco.py')
# COCO's order, shrunk: CAM labels up to 1, aux-CAM seg labels up to 3 (the
# descent and PTC from there), GMM filter and consistency from 5
PHASES = dict(cam=1, aux_cam_until=3, descent=3, gmm=5, end=8)
MAX_ITERS = 8


@pytest.fixture(scope='module')
def coco_root(tmp_path_factory) -> str:
    import make_toy_voc
    root = str(tmp_path_factory.mktemp('toy_coco'))
    make_toy_voc.main([
        '--out', root, '--layout', 'coco', '--num-train', '16', '--num-val',
        '6', '--num-test', '0'
    ])
    return root


def test_coco_layout(coco_root):
    for subset, count in (('train2014', 16), ('val2014', 6)):
        for kind, suffix in (('JPEGImages', '.jpg'),
                             ('SegmentationClass', '.png')):
            files = sorted(os.listdir(osp.join(coco_root, kind, subset)))
            assert len(files) == count and files[0].endswith(suffix)
    names = open(osp.join(coco_root, 'train.txt')).read().split()
    assert len(names) == 16
    assert len(open(osp.join(coco_root, 'val_part.txt')).read().split()) == 6
    assert osp.isfile(osp.join(coco_root, 'cls_labels_onehot.npy'))
    assert not osp.exists(osp.join(coco_root, 'ImageSets'))


def coco_toy_config(coco_root: str) -> Config:
    """configs/dupl_vit-b_coco.py with the toy network, classes and
    128 px pipelines, on the toy COCO layout."""
    cfg = Config.fromfile(COCO_CONFIG)
    toy = Config.fromfile(TOY_CONFIG)
    assert cfg.train_dataloader.dataset.type == 'COCOWSSSDataset'
    cfg.model.student = toy.model.student
    cfg.model.student.backbone.init_cfg = None  # offline, from scratch
    cfg.model.num_classes = 5
    cfg.model.train_cfg.phases = PHASES
    cfg.model.pseudo_labeler = toy.model.pseudo_labeler  # toy PAR, GMM
    pipelines = dict(
        train_dataloader=toy.train_dataloader.dataset.pipeline,
        val_dataloader=toy.val_pipeline,
        test_dataloader=toy.val_pipeline)
    for loader, pipeline in pipelines.items():
        cfg[loader].num_workers = 0
        cfg[loader].persistent_workers = False
        cfg[loader].dataset.update(
            data_root=coco_root, metainfo=toy.toy_metainfo,
            pipeline=pipeline)
    cfg.train_dataloader.batch_size = 2
    cfg.tta_pipeline = toy.tta_pipeline
    cfg.tta_model.resize_to = (128, 128)  # COCO's 448 resize, at toy size
    cfg.train_cfg.update(max_iters=MAX_ITERS, val_interval=MAX_ITERS)
    cfg.param_scheduler[0].update(max_iters=MAX_ITERS, warmup_iters=2)
    cfg.default_hooks.checkpoint.interval = MAX_ITERS
    cfg.default_hooks.logger.interval = 1
    return cfg


def test_coco_config_trains_and_tests_with_tta(coco_root, tmp_path):
    cfg = coco_toy_config(coco_root)
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    assert type(dataset).__name__ == 'COCOWSSSDataset' and len(dataset) == 16
    assert dataset[0]['data_samples']['weak'].cls_labels.shape == (5, )
    path = str(tmp_path / 'coco_toy.py')
    cfg.dump(path)
    work_dir = str(tmp_path / 'work')
    log = run_train(path, work_dir, ['randomness.seed=0'], cwd=str(tmp_path))
    lines = re.findall(r'Iter\(train\) +\[ *(\d+)/8\](.*)', log)
    assert [int(n) for n, _ in lines] == list(range(1, MAX_ITERS + 1))
    first, last = lines[0][1], lines[-1][1]
    # COCO's order: PTC only after the descent starts, seg after cam,
    # the GMM filter and consistency (delay 0) from gmm
    assert 's1.loss_ptc' not in first and 's1.loss_seg' not in first
    for key in ('s1.loss_ptc', 's1.loss_seg', 'loss_disc', 'gmm.s1.removed',
                's1.loss_consistency'):
        assert key in last, (key, last)
    checkpoint = osp.join(work_dir, f'iter_{MAX_ITERS}.pth')
    proc = subprocess.run([
        sys.executable, osp.join(REPO, 'tools', 'test.py'), path, checkpoint,
        '--tta', '--work-dir', str(tmp_path / 'test')
    ], cwd=str(tmp_path), capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert 'COCOProtocolTTAModel' in out
    miou = re.findall(r'Iter\(test\).*?mIoU: ([0-9.]+)', out)
    assert miou and 0 <= float(miou[-1]) <= 100, out[-3000:]
