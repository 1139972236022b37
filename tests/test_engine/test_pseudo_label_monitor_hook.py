# Copyright (c) OpenMMLab. All rights reserved.
"""PseudoLabelMonitorHook's scores, outside a runner (the runner run, and
the proof that training never reads the masks, are in
tests/test_integration/test_no_pixel_labels_in_training.py)."""
import os.path as osp
import random
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import REPO, TOY_CONFIG
from mmengine.config import Config
from mmseg.registry import MODELS

import mmseg_dupl  # noqa: F401
from mmseg_dupl.engine.hooks import PseudoLabelMonitorHook

BASELINE = osp.join(REPO, 'configs', 'baseline_single-student_vit-tiny_toy.py')
TOY_CLASSES = ('aeroplane', 'bicycle', 'bird', 'boat', 'bottle')


def _model(config, data_root):
    """The config's model (random init) and config, on ``data_root``."""
    cfg = Config.fromfile(config)
    for loader in ('train_dataloader', 'val_dataloader'):
        cfg[loader].dataset.data_root = data_root
    cfg.model.student.backbone.init_cfg = None
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model, cfg


def _hook(model, cfg, **hook_args):
    """The hook with its subset loaded (``before_train``)."""
    hook = PseudoLabelMonitorHook(**dict(dict(num_images=4, batch_size=2),
                                         **hook_args))
    hook.before_train(SimpleNamespace(cfg=cfg, model=model))
    return hook


def _setup(config, data_root, **hook_args):
    model, cfg = _model(config, data_root)
    return model, _hook(model, cfg, **hook_args)


def _check_ranges(scores):
    for key, value in scores.items():
        assert 0 <= value <= 100, (key, value)


def test_baseline_in_phase_a_scores_the_labels_its_cams_would_give(
        toy_data_root):
    model, hook = _setup(BASELINE, toy_data_root)
    model.follow_schedule(0)  # phase A: training makes no seg labels yet
    model.train()
    scores = hook.scores(model)
    assert model.training  # restored
    expected = {'s1.cam_mIoU', 's1.pseudo_mIoU', 's1.pseudo_coverage',
                's1.over_activation', 's1.cam_over_activation'}
    assert expected <= set(scores)
    per_class = {k for k in scores if k.startswith('s1.over_activation.')}
    assert per_class and per_class <= {f's1.over_activation.{c}'
                                       for c in TOY_CLASSES}
    assert not any(k.startswith('s2.') or 'filtered' in k for k in scores)
    assert 'feature_cosine' not in scores  # one student
    _check_ranges(scores)
    assert len(hook._batches) == 2 and sum(
        len(b['inputs']) for b in hook._batches) == 4


def _rng_states():
    return (random.getstate(), np.random.get_state()[1].tobytes(),
            torch.get_rng_state())


def test_dupl_in_phase_c_scores_both_students_before_and_after_the_filter(
        toy_data_root):
    """Both students, both label stages; no random number drawn (loading
    the subset or scoring), so a run with the hook trains as one
    without."""
    model, cfg = _model(TOY_CONFIG, toy_data_root)
    model.follow_schedule(model.schedule.phases['gmm'])
    before = _rng_states()
    hook = _hook(model, cfg)
    scores = hook.scores(model)
    after = _rng_states()
    assert before[0] == after[0] and before[1] == after[1]
    assert torch.equal(before[2], after[2])
    for k in (1, 2):
        assert {f's{k}.{name}' for name in (
            'cam_mIoU', 'pseudo_mIoU', 'pseudo_coverage', 'filtered_mIoU',
            'filtered_coverage')} <= set(scores)
        # the filter only removes labels
        assert scores[f's{k}.filtered_coverage'] <= \
            scores[f's{k}.pseudo_coverage']
    # two independently initialised students differ; two copies do not
    assert -1 <= scores.pop('feature_cosine') < 0.99
    _check_ranges(scores)
    model.student2.load_state_dict(model.student1.state_dict())
    assert hook.scores(model)['feature_cosine'] == pytest.approx(1.,
                                                                 abs=1e-4)


def test_a_subset_without_masks_is_refused(toy_data_root):
    pipeline = [
        dict(type='LoadCheckedImageFromFile'),
        dict(type='Resize', scale=(128, 128), keep_ratio=False),
        dict(type='PackWSSSInputs')
    ]
    with pytest.raises(ValueError, match='loads no mask.*'
                       'LoadCheckedAnnotations'):
        _setup(TOY_CONFIG, toy_data_root, pipeline=pipeline)


def test_bad_arguments_and_models_are_refused():
    with pytest.raises(ValueError, match='interval must be an int >= 1'):
        PseudoLabelMonitorHook(interval=0)
    with pytest.raises(TypeError, match='no pseudo_labels'):
        PseudoLabelMonitorHook().before_train(
            SimpleNamespace(model=torch.nn.Linear(1, 1)))


def test_a_config_without_val_pipeline_asks_for_one():
    cfg = Config(dict(val_dataloader=None))
    with pytest.raises(ValueError, match='no val_dataloader.dataset.pipeline'
                       '.*give the hook pipeline='):
        PseudoLabelMonitorHook._val_pipeline(cfg)
    pipeline = [dict(type='LoadCheckedImageFromFile')]
    cfg = Config(dict(val_dataloader=dict(dataset=dict(pipeline=pipeline))))
    assert PseudoLabelMonitorHook._val_pipeline(cfg) == pipeline
