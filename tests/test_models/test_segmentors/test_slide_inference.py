# Copyright (c) OpenMMLab. All rights reserved.
"""``model.test_cfg.mode='slide'``: mmseg's sliding windows (checked
against ``EncoderDecoder.slide_inference`` itself) per student and for the
ensemble, through ``predict``, mmseg's ``SegTTAModel`` and the VOC protocol
TTA model; bad settings are refused naming the key."""
import copy
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.structures import PixelData
from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import mmseg_dupl  # noqa: F401

from dupl_test_utils import tiny_model_cfg

SLIDE = dict(mode='slide', crop_size=(24, 24), stride=(16, 16))


def build(**test_cfg):
    torch.manual_seed(0)
    cfg = tiny_model_cfg()
    cfg['test_cfg'] = test_cfg
    model = MODELS.build(cfg)
    model.init_weights()
    return model.eval()


def inputs(height=40, width=56):
    return torch.randn(2, 3, height, width,
                       generator=torch.Generator().manual_seed(1))


def mmseg_slide(model, x):
    """mmseg's own EncoderDecoder.slide_inference on the model's
    encode_decode (the reference semantics)."""
    shim = SimpleNamespace(
        test_cfg=ConfigDict(
            stride=model.test_cfg['stride'],
            crop_size=model.test_cfg['crop_size']),
        out_channels=model.out_channels,
        encode_decode=model.encode_decode)
    metas = [dict(img_shape=x.shape[2:]) for _ in x]
    return EncoderDecoder.slide_inference(shim, x, metas)


@pytest.mark.parametrize('student', ['s1', 's2', 'ensemble'])
def test_slide_matches_mmseg(student):
    model = build(student=student, **SLIDE)
    x = inputs()
    with torch.no_grad():
        ours = model.inference(x)
        ref = mmseg_slide(model, x)
        whole = model.encode_decode(x, None)
    assert ours.shape == (2, model.out_channels, 40, 56)
    torch.testing.assert_close(ours, ref)
    assert not torch.allclose(ours, whole)  # the windows made a difference


def test_ensemble_is_the_mean_of_the_students():
    x = inputs()
    with torch.no_grad():
        logits = {s: build(student=s, **SLIDE).inference(x)
                  for s in ('s1', 's2', 'ensemble')}
    torch.testing.assert_close(logits['ensemble'],
                               (logits['s1'] + logits['s2']) / 2)


def test_one_window_equals_whole():
    model = build(mode='slide', crop_size=(64, 64), stride=(32, 32))
    x = inputs()
    with torch.no_grad():
        torch.testing.assert_close(
            model.inference(x), model.encode_decode(x, None))


def test_predict_uses_slide():
    x = inputs()
    slide, whole = build(**SLIDE), build()
    with torch.no_grad():
        pred = slide.predict(x)[0]
        pred_whole = whole.predict(x)[0]
        logits = slide.slide_inference(x)[0]
    torch.testing.assert_close(pred.seg_logits.data, logits)
    assert torch.equal(pred.pred_sem_seg.data[0], logits.argmax(0))
    assert not torch.equal(pred.seg_logits.data, pred_whole.seg_logits.data)


def _tta_batch(x):
    """Two views (image, flipped image) of one uint8 sample, as
    TestTimeAug collates them."""
    img = (x[0].clamp(-2, 2) * 60 + 128).to(torch.uint8)
    views = []
    for flip in (False, True):
        sample = SegDataSample(
            metainfo=dict(
                img_path='toy.jpg', ori_shape=img.shape[1:],
                img_shape=img.shape[1:], flip=flip,
                flip_direction='horizontal' if flip else None))
        sample.gt_sem_seg = PixelData(
            data=torch.zeros(1, *img.shape[1:], dtype=torch.long))
        views.append((img.flip(-1) if flip else img, sample))
    return dict(
        inputs=[[v[0]] for v in views],
        data_samples=[[v[1]] for v in views])


def test_seg_tta_model_runs_slide_per_view():
    model = build(**SLIDE)
    tta = MODELS.build(dict(type='SegTTAModel', module=model))
    batch = _tta_batch(inputs())
    with torch.no_grad():
        merged = tta.test_step(copy.deepcopy(batch))[0]
        probs = []
        for view_inputs, view_samples in zip(batch['inputs'],
                                             batch['data_samples']):
            data = model.data_preprocessor(
                dict(inputs=view_inputs, data_samples=view_samples), False)
            out = model.predict(data['inputs'], data['data_samples'])[0]
            probs.append(out.seg_logits.data.softmax(0))
    expected = torch.stack(probs).mean(0).argmax(0)
    assert torch.equal(merged.pred_sem_seg.data[0], expected)


def test_voc_protocol_tta_slides_each_scale():
    model = build(student='ensemble', **SLIDE)
    tta = MODELS.build(
        dict(type='VOCProtocolTTAModel', module=model, scales=(1.0, 1.5)))
    x = inputs()
    with torch.no_grad():
        torch.testing.assert_close(tta.raw_logits(x), mmseg_slide(model, x))
        whole_tta = MODELS.build(
            dict(type='VOCProtocolTTAModel', module=build(student='ensemble'),
                 scales=(1.0, 1.5)))
        slid = tta.protocol_logits(x[:1], (40, 56))
        whole = whole_tta.protocol_logits(x[:1], (40, 56))
    assert slid.shape == whole.shape == (1, model.out_channels, 40, 56)
    assert not torch.allclose(slid, whole)


@pytest.mark.parametrize('test_cfg, match', [
    (dict(mode='sliding'), r"model.test_cfg.mode must be 'whole' or 'slide'"),
    (dict(mode='slide', stride=(8, 8)), r'model.test_cfg.crop_size'),
    (dict(mode='slide', crop_size=(8, 8), stride=0), r'model.test_cfg.stride'),
    (dict(SLIDE, predict_on='cam'), r"predict_on='cam' runs on whole"),
])
def test_bad_slide_settings_are_refused(test_cfg, match):
    with pytest.raises(ValueError, match=match):
        build(**test_cfg)


def test_int_crop_and_stride():
    model = build(mode='slide', crop_size=24, stride=16)
    x = inputs()
    with torch.no_grad():
        torch.testing.assert_close(
            model.inference(x), build(**SLIDE).inference(x))
