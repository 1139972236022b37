# Copyright (c) OpenMMLab. All rights reserved.
import os.path as osp

import mmcv
import numpy as np
import pytest
import torch
from mmseg.evaluation import IoUMetric
from mmseg.registry import METRICS
from PIL import Image

import mmseg_dupl  # noqa: F401
from mmseg_dupl.evaluation import CRFIoUMetric, dense_crf

CLASSES = ('background', 'a', 'b')
EDGE = 20


def make_samples(tmp_path, count=5):
    """Evaluator-style sample dicts: an image with a colour edge at column
    EDGE (+ i), logits whose boundary is 6 columns off, and the truth."""
    samples = []
    for i in range(count):
        h, w = 30 + i, 40
        edge = EDGE + i
        rgb = np.zeros((h, w, 3), np.uint8)
        rgb[:, :edge] = (220, 30, 30)
        rgb[:, edge:] = (30, 30, 220)
        path = str(tmp_path / f'img_{i}.png')
        mmcv.imwrite(rgb[..., ::-1], path)  # mmcv writes BGR
        cols = np.arange(w, dtype=np.float32)[None].repeat(h, 0)
        ramp = (cols - edge - 6) / 5.0
        logits = np.stack([-ramp, ramp, np.full_like(ramp, -3)]) * 0.5
        gt = (cols >= edge).astype(np.int64)
        gt[:2] = 255
        samples.append(
            dict(
                img_path=path,
                ori_shape=(h, w),
                seg_logits=dict(data=torch.from_numpy(logits)),
                pred_sem_seg=dict(
                    data=torch.from_numpy(logits.argmax(0))[None]),
                gt_sem_seg=dict(data=torch.from_numpy(gt)[None])))
    return samples


def run(metric, samples, batch=2):
    metric.dataset_meta = dict(classes=CLASSES)
    for i in range(0, len(samples), batch):
        metric.process({}, samples[i:i + batch])
        assert len(metric._pending) <= metric.max_pending
    return metric.evaluate(len(samples))


def reference(samples, crf):
    """Plain IoUMetric on inline CRF labels (or the raw predictions)."""
    metric = IoUMetric()
    metric.dataset_meta = dict(classes=CLASSES)
    for s in samples:
        s = dict(s)
        if crf:
            rgb = mmcv.imread(s['img_path'], channel_order='rgb')
            s['pred_sem_seg'] = dict(
                data=torch.from_numpy(dense_crf(rgb, s['seg_logits']['data']))
                [None])
        metric.process({}, [s])
    return metric.evaluate(len(samples))


def test_inline_equals_iou_of_crf_labels_and_improves(tmp_path):
    samples = make_samples(tmp_path)
    got = run(CRFIoUMetric(num_workers=0), samples)
    assert got == reference(samples, crf=True)
    assert got['mIoU'] > reference(samples, crf=False)['mIoU'] + 10


def test_worker_pool_matches_inline_in_order(tmp_path):
    samples = make_samples(tmp_path)
    out_dir = tmp_path / 'out'
    metric = METRICS.build(
        dict(
            type='CRFIoUMetric',
            num_workers=2,
            max_pending=2,
            output_dir=str(out_dir)))
    got = run(metric, samples)
    assert got == run(CRFIoUMetric(num_workers=0), samples)
    assert metric._executor is None and not metric._pending
    # the PNGs are the CRF labels of the right images
    for s in samples:
        name = osp.splitext(osp.basename(s['img_path']))[0]
        png = np.array(Image.open(out_dir / f'{name}.png'))
        rgb = mmcv.imread(s['img_path'], channel_order='rgb')
        assert np.array_equal(png, dense_crf(rgb, s['seg_logits']['data']))


def test_format_only_without_labels(tmp_path):
    samples = make_samples(tmp_path, count=3)
    for s in samples:
        del s['gt_sem_seg']
    metric = CRFIoUMetric(
        num_workers=1, format_only=True, output_dir=str(tmp_path / 'o'))
    assert run(metric, samples) == {}
    assert len(list((tmp_path / 'o').glob('*.png'))) == 3


def test_image_resized_to_logit_size(tmp_path):
    sample = make_samples(tmp_path, count=1)[0]
    logits = sample['seg_logits']['data']
    big = torch.nn.functional.interpolate(
        logits[None], size=(60, 80), mode='bilinear')[0]
    sample['seg_logits'] = dict(data=big)
    sample['gt_sem_seg'] = dict(data=torch.zeros(1, 60, 80, dtype=torch.long))
    result = run(CRFIoUMetric(), [sample])
    assert 0 <= result['mIoU'] <= 100


def test_errors_name_the_problem(tmp_path):
    sample = make_samples(tmp_path, count=1)[0]
    metric = CRFIoUMetric()
    metric.dataset_meta = dict(classes=CLASSES)
    no_logits = {k: v for k, v in sample.items() if k != 'seg_logits'}
    with pytest.raises(KeyError, match='img_0.png'):
        metric.process({}, [no_logits])
    missing = dict(sample, img_path=str(tmp_path / 'nope.jpg'))
    with pytest.raises(OSError, match='nope.jpg'):
        metric.process({}, [missing])
    with pytest.raises(ValueError, match='num_workers'):
        CRFIoUMetric(num_workers=-1)
    with pytest.raises(ValueError, match='crf_cfg'):
        CRFIoUMetric(crf_cfg=dict(bi_xy=3))
