# Copyright (c) OpenMMLab. All rights reserved.
"""Every shipped config loads, and the paper configs hold the paper's
settings (algorithm.md §9, §12)."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmseg.registry import MODELS

import mmseg_dupl  # noqa: F401

CONFIGS = sorted(
    glob.glob(osp.join(osp.dirname(__file__), '..', 'configs', '*.py')))


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_config_loads_with_plugin_imports(path):
    cfg = Config.fromfile(path)
    imports = set(cfg.custom_imports.imports)
    assert imports >= {'mmseg_dupl', 'mmpretrain.models'}
    assert cfg.custom_imports.allow_failed_imports is False
    assert cfg.default_scope == 'mmseg'
    pipeline = cfg.train_dataloader.dataset.pipeline
    assert not any(t['type'] == 'LoadAnnotations' for t in pipeline), \
        'training must not load masks'


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_dupl_configs_inherit_the_schedule_hooks(path):
    cfg = Config.fromfile(path)
    if cfg.model.type != 'DualStudentSegmentor':
        return  # the fully supervised reference: an EncoderDecoder
    types = [h['type'] for h in cfg.get('custom_hooks', [])]
    for hook in ('SetIterInfoHook', 'CosineThresholdHook',
                 'GMMNoiseFilterHook'):
        assert types.count(hook) == 1, (path, types)


def test_voc_config_is_the_official_run():
    cfg = Config.fromfile('configs/dupl_vit-b_voc.py')
    assert cfg.train_dataloader.batch_size == 1  # 4 GPUs x 1
    assert cfg.train_cfg.max_iters == 20000
    assert cfg.optim_wrapper.optimizer.lr == 6e-5
    assert cfg.param_scheduler[0].warmup_iters == 1500
    train_cfg = cfg.model.train_cfg
    assert train_cfg.phases == dict(cam=2000, gmm=8000, end=20000)
    assert train_cfg.thresholds.high == 0.7
    assert train_cfg.thresholds.high_target[4] == .55
    assert train_cfg.loss_weights.seg == 0.2
    # the schedule hooks, from the model base config (values in train_cfg)
    assert [h['type'] for h in cfg.custom_hooks] == [
        'SetIterInfoHook', 'CosineThresholdHook', 'GMMNoiseFilterHook']
    assert all(len(h) == 1 for h in cfg.custom_hooks)  # no values of their own
    assert cfg.find_unused_parameters is True


def test_coco_config_is_the_official_run():
    cfg = Config.fromfile('configs/dupl_vit-b_coco.py')
    assert cfg.model.num_classes == 80
    assert cfg.model.student.decode_head.num_classes == 81
    assert cfg.train_cfg.max_iters == 80000
    train_cfg = cfg.model.train_cfg
    assert train_cfg.thresholds.high == 0.65
    assert cfg.model.test_cfg.bkg_thr == 0.45
    assert train_cfg.consistency_delay == 0
    assert train_cfg.phases == dict(
        cam=8000, aux_cam_until=12000, descent=12000, gmm=32000, end=80000)


def test_voc_model_builds_with_deit_base_students():
    cfg = Config.fromfile('configs/dupl_vit-b_voc.py')
    cfg.model.student.backbone.init_cfg = None  # no download in tests
    model = MODELS.build(cfg.model)
    n_params = sum(p.numel() for p in model.student1.parameters())
    # DeiT-B (~85.8M without its head) + 2 classifiers + LargeFOV
    assert 85e6 < n_params < 95e6
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        feat_aux, feat = model.student1.extract_feat(x)
    assert feat.shape == (1, 768, 4, 4) and feat_aux.shape == feat.shape
