# Copyright (c) OpenMMLab. All rights reserved.
"""test_cfg.per_student_outputs: every student's predictions in one
predict pass, in validation only unless asked."""
import pytest
import torch
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import mmseg_dupl  # noqa: F401

from dupl_test_utils import make_batch, tiny_model_cfg

ORI = (40, 36)


def build(num_students=2, **test_cfg):
    torch.manual_seed(0)
    cfg = tiny_model_cfg()
    cfg.update(num_students=num_students, test_cfg=test_cfg)
    model = MODELS.build(cfg)
    model.init_weights()
    return model.eval()


def _inputs_and_samples():
    batch = make_batch()
    samples = batch['data_samples']['weak']
    for s in samples:
        s.set_metainfo(dict(ori_shape=ORI, padding_size=[0, 0, 0, 0]))
    return batch['inputs']['weak'], samples


def _predict(model, inputs, samples, **test_cfg):
    """The main prediction of ``test_cfg`` on copies of the samples."""
    saved = dict(model.test_cfg)
    model.test_cfg.update(test_cfg, per_student_outputs=False)
    copies = [SegDataSample(metainfo=s.metainfo) for s in samples]
    with torch.no_grad():
        out = model(inputs, copies, mode='predict')
    model.test_cfg.update(saved)
    return [s.pred_sem_seg.data for s in out]


def test_one_pass_matches_each_students_own_prediction():
    model = build(per_student_outputs=True)
    inputs, samples = _inputs_and_samples()
    with torch.no_grad():
        out = model(inputs, samples, mode='predict')
        cls = [model.student1(inputs)['cls'], model.student2(inputs)['cls']]
    for k in (1, 2):
        for kind, predict_on in (('seg', 'seg'), ('cam', 'cam'),
                                 ('cam_aux', 'cam_aux')):
            expected = _predict(model, inputs, samples,
                                predict_on=predict_on, student=f's{k}')
            for sample, want in zip(out, expected):
                got = sample.get(f'pred_{kind}_s{k}').data
                assert got.shape == (1, *ORI)
                assert torch.equal(got, want), (kind, k)
        for i, sample in enumerate(out):
            assert torch.allclose(sample.get(f'cls_logits_s{k}'),
                                  cls[k - 1][i], atol=1e-6)
    # the two students differ (independent initialisations)
    assert not torch.equal(out[0].pred_cam_s1.data, out[0].pred_cam_s2.data)
    # and the main prediction is still there
    assert all(s.pred_sem_seg.data.shape == (1, *ORI) for s in out)


def _data(samples, inputs):
    """A dataloader batch (uint8 images) for val_step / test_step."""
    images = [(i.clamp(-2, 2) * 60 + 128).byte() for i in inputs]
    return dict(inputs=images, data_samples=samples)


def test_val_mode_adds_outputs_in_val_step_only():
    model = build(per_student_outputs='val')
    inputs, samples = _inputs_and_samples()
    fields = ['pred_seg_s1', 'pred_cam_s1', 'pred_cam_aux_s1',
              'cls_logits_s1', 'pred_seg_s2', 'cls_logits_s2']
    tested = model.test_step(_data(
        [SegDataSample(metainfo=s.metainfo) for s in samples], inputs))
    assert not any(f in tested[0] for f in fields)
    validated = model.val_step(_data(samples, inputs))
    assert all(f in validated[0] for f in fields)
    assert not model._in_val_step
    # the main prediction is the same either way
    assert torch.equal(tested[0].pred_sem_seg.data,
                       validated[0].pred_sem_seg.data)


def test_default_adds_nothing_and_baseline_has_one_student():
    inputs, samples = _inputs_and_samples()
    model = build()
    assert model.test_cfg['per_student_outputs'] is False
    out = model.val_step(_data(samples, inputs))
    assert 'pred_seg_s1' not in out[0]
    baseline = build(num_students=1, per_student_outputs='val')
    out = baseline.val_step(_data(
        [SegDataSample(metainfo=s.metainfo) for s in samples], inputs))
    assert 'pred_cam_aux_s1' in out[0] and 'pred_seg_s2' not in out[0]


def test_bad_switch_names_the_key():
    with pytest.raises(ValueError,
                       match='model.test_cfg.per_student_outputs'):
        build(per_student_outputs='test')
