# Copyright (c) OpenMMLab. All rights reserved.
import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import mmseg_dupl  # noqa: F401
from mmseg_dupl.models.tta import VOCProtocolTTAModel

from dupl_test_utils import tiny_model_cfg

MEAN = torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1)
STD = torch.tensor([58.395, 57.12, 57.375]).view(1, 3, 1, 1)


def build_tta(student='s1', **kwargs):
    torch.manual_seed(0)
    cfg = tiny_model_cfg()
    cfg['test_cfg'] = dict(student=student)
    tta = MODELS.build(dict(type='VOCProtocolTTAModel', module=cfg, **kwargs))
    tta.module.init_weights()
    return tta.eval()


def make_data(height=37, width=45, ori_shape=None, seed=0):
    """A dataloader batch: one BGR uint8 image at native resolution."""
    rng = np.random.default_rng(seed)
    img = torch.from_numpy(
        rng.integers(0, 256, (3, height, width), dtype=np.uint8))
    label = torch.from_numpy(rng.integers(0, 4, (1, height, width)))
    sample = SegDataSample(
        metainfo=dict(
            img_path='x.jpg',
            ori_shape=ori_shape or (height, width),
            img_shape=(height, width)))
    sample.gt_sem_seg = PixelData(data=label)
    return dict(inputs=[img], data_samples=[sample])


def reference_voc(students, img_bgr_uint8, label_hw, scales=(1.0, 1.5, 1.25)):
    """algorithm.md §10.2 with plain torch ops (as eval_seg_voc.py)."""
    x = img_bgr_uint8[None].float().flip(1)  # BGR -> RGB
    x = (x - MEAN) / STD
    _, _, h, w = x.shape
    per_scale = []
    for s in scales:
        xs = F.interpolate(
            x,
            size=(int(h * s), int(w * s)),
            mode='bilinear',
            align_corners=False)
        segs = torch.stack(
            [st.seg_logits(torch.cat([xs, xs.flip(-1)])) for st in students])
        segs = F.interpolate(
            segs.mean(0), size=label_hw, mode='bilinear', align_corners=False)
        per_scale.append(segs[:1] + segs[1:].flip(-1))
    logits = torch.max(torch.stack(per_scale), dim=0)[0][0]
    return logits, logits.argmax(0)


@pytest.mark.parametrize('student', ['s1', 's2', 'ensemble'])
def test_matches_hand_written_reference(student):
    tta = build_tta(student)
    data = make_data()
    with torch.no_grad():
        out = tta.test_step(copy.deepcopy(data))
        chosen = {
            's1': [tta.module.student1],
            's2': [tta.module.student2],
            'ensemble': [tta.module.student1, tta.module.student2]
        }[student]
        ref_logits, ref_pred = reference_voc(chosen, data['inputs'][0],
                                             (37, 45))
    assert len(out) == 1
    assert out[0].seg_logits.data.shape == (4, 37, 45)
    torch.testing.assert_close(
        out[0].seg_logits.data, ref_logits, rtol=1e-5, atol=1e-5)
    assert torch.equal(out[0].pred_sem_seg.data[0], ref_pred)
    # the ground truth travels on for IoUMetric
    assert torch.equal(out[0].gt_sem_seg.data,
                       data['data_samples'][0].gt_sem_seg.data)


def test_students_and_merge_rule_matter():
    data = make_data()
    with torch.no_grad():
        s1 = build_tta('s1').test_step(copy.deepcopy(data))[0]
        s2 = build_tta('s2').test_step(copy.deepcopy(data))[0]
        one = build_tta('s1', scales=(1.0, ), flip=False)
        single = one.test_step(copy.deepcopy(data))[0]
        x = (data['inputs'][0][None].float().flip(1) - MEAN) / STD
        plain = F.interpolate(
            one.module.student1.seg_logits(x),
            size=(37, 45),
            mode='bilinear',
            align_corners=False)[0]
    assert not torch.allclose(s1.seg_logits.data, s2.seg_logits.data)
    # one scale without flip is the plain single-resize prediction
    torch.testing.assert_close(single.seg_logits.data, plain)
    assert not torch.allclose(s1.seg_logits.data, plain)


def test_outputs_at_label_size():
    """A resizing pipeline: logits come out at ori_shape (label size)."""
    tta = build_tta()
    with torch.no_grad():
        out = tta.test_step(make_data(32, 40, ori_shape=(50, 64)))[0]
    assert out.seg_logits.data.shape[1:] == (50, 64)
    assert out.pred_sem_seg.data.shape == (1, 50, 64)


def test_single_test_time_aug_view_and_errors():
    tta = build_tta()
    data = make_data()
    wrapped = {k: [v] for k, v in copy.deepcopy(data).items()}
    with torch.no_grad():
        a = tta.test_step(wrapped)[0].seg_logits.data
        b = tta.test_step(copy.deepcopy(data))[0].seg_logits.data
    torch.testing.assert_close(a, b)
    two = {k: [v, v] for k, v in copy.deepcopy(data).items()}
    with pytest.raises(ValueError, match='without TestTimeAug'):
        tta.test_step(two)
    with pytest.raises(ValueError, match='scales'):
        build_tta(scales=(1.0, 0))
    cfg = tiny_model_cfg()
    cfg['test_cfg'] = dict(predict_on='cam')
    with pytest.raises(ValueError, match='predict_on'):
        VOCProtocolTTAModel(module=cfg)


def test_plain_mmseg_segmentor():
    """Works on any mmseg segmentor through its mode='tensor' logits."""
    cfg = dict(
        type='EncoderDecoder',
        data_preprocessor=dict(
            type='SegDataPreProcessor', mean=[0, 0, 0], std=[1, 1, 1]),
        backbone=dict(
            type='MixVisionTransformer',
            in_channels=3,
            embed_dims=8,
            num_stages=1,
            num_layers=[1],
            num_heads=[1],
            patch_sizes=[4],
            strides=[4],
            sr_ratios=[1],
            out_indices=(0, )),
        decode_head=dict(
            type='FCNHead',
            in_channels=8,
            channels=8,
            num_convs=1,
            num_classes=3,
            in_index=0))
    torch.manual_seed(0)
    tta = VOCProtocolTTAModel(module=cfg, scales=(1.0, 1.5)).eval()
    data = make_data(24, 28)
    with torch.no_grad():
        out = tta.test_step(copy.deepcopy(data))[0]
        x = data['inputs'][0][None].float()
        ref = []
        for size in ((24, 28), (36, 42)):
            xs = F.interpolate(x, size, mode='bilinear', align_corners=False)
            segs = tta.module(torch.cat([xs, xs.flip(-1)]), mode='tensor')
            segs = F.interpolate(
                segs, (24, 28), mode='bilinear', align_corners=False)
            ref.append(segs[:1] + segs[1:].flip(-1))
    assert out.seg_logits.data.shape == (3, 24, 28)
    torch.testing.assert_close(out.seg_logits.data,
                               torch.max(ref[0], ref[1])[0])
