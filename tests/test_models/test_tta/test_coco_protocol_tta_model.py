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
from mmseg_dupl.models.tta import COCOProtocolTTAModel

from dupl_test_utils import tiny_model_cfg

MEAN = torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1)
STD = torch.tensor([58.395, 57.12, 57.375]).view(1, 3, 1, 1)
SIDE = 48  # stands for 448 on the tiny model (patch 8: a 6 x 6 grid)


def build_tta(student='s1', **kwargs):
    torch.manual_seed(0)
    cfg = tiny_model_cfg()
    cfg['test_cfg'] = dict(student=student)
    kwargs.setdefault('resize_to', (SIDE, SIDE))
    tta = MODELS.build(dict(type='COCOProtocolTTAModel', module=cfg, **kwargs))
    tta.module.init_weights()
    return tta.eval()


def make_data(height=37, width=45, seed=0):
    rng = np.random.default_rng(seed)
    img = torch.from_numpy(
        rng.integers(0, 256, (3, height, width), dtype=np.uint8))
    sample = SegDataSample(
        metainfo=dict(
            img_path='x.jpg',
            ori_shape=(height, width),
            img_shape=(height, width)))
    sample.gt_sem_seg = PixelData(
        data=torch.from_numpy(rng.integers(0, 4, (1, height, width))))
    return dict(inputs=[img], data_samples=[sample])


def reference_coco(student, img_bgr_uint8, label_hw, scales=(1.0, 1.25, 1.5)):
    """algorithm.md §12 with plain torch ops (as eval_seg_coco_ddp.py)."""
    x = (img_bgr_uint8[None].float().flip(1) - MEAN) / STD
    x = F.interpolate(
        x, size=(SIDE, SIDE), mode='bilinear', align_corners=False)
    grid = student.seg_logits(x).shape[2:]
    total = 0
    for s in scales:
        xs = F.interpolate(
            x,
            size=(int(SIDE * s), int(SIDE * s)),
            mode='bilinear',
            align_corners=False)
        segs = student.seg_logits(torch.cat([xs, xs.flip(-1)]))
        segs = F.interpolate(
            segs, size=grid, mode='bilinear', align_corners=False)
        total = total + segs[:1] + segs[1:].flip(-1)
    logits = F.interpolate(
        total, size=label_hw, mode='bilinear', align_corners=False)[0]
    return logits, logits.argmax(0)


@pytest.mark.parametrize('student', ['s1', 's2'])
def test_matches_hand_written_reference(student):
    tta = build_tta(student)
    data = make_data()
    with torch.no_grad():
        out = tta.test_step(copy.deepcopy(data))[0]
        module = getattr(tta.module, 'student' + student[1])
        ref_logits, ref_pred = reference_coco(module, data['inputs'][0],
                                              (37, 45))
    assert out.seg_logits.data.shape == (4, 37, 45)
    torch.testing.assert_close(
        out.seg_logits.data, ref_logits, rtol=1e-5, atol=1e-5)
    assert torch.equal(out.pred_sem_seg.data[0], ref_pred)


def test_differs_from_voc_protocol():
    """Sum on the decoder grid after a square resize is not VOC's max."""
    data = make_data()
    with torch.no_grad():
        coco = build_tta().test_step(copy.deepcopy(data))[0]
        voc = MODELS.build(
            dict(type='VOCProtocolTTAModel',
                 module=build_tta().module)).eval()
        voc_out = voc.test_step(copy.deepcopy(data))[0]
    assert not torch.allclose(coco.seg_logits.data, voc_out.seg_logits.data)


def test_needs_unit_scale():
    with pytest.raises(ValueError, match='1.0'):
        COCOProtocolTTAModel(module=tiny_model_cfg(), scales=(1.25, 1.5))
