# Copyright (c) OpenMMLab. All rights reserved.
"""DualStudentMetric on hand-computed label maps."""
import numpy as np
import pytest
import torch

from mmseg_dupl.evaluation import DualStudentMetric, multilabel_f1

CLASSES = ('background', 'a', 'b', 'c')  # 'c' is never in GT nor predicted


def _field(values) -> dict:
    return dict(data=torch.tensor(values)[None])


def _sample(gt, seg, cam, cam_aux, logits, cls_labels, students=(1, 2)):
    """A data sample as the evaluator gets it (``to_dict()``); student 2
    predicts background everywhere and no class."""
    sample = dict(gt_sem_seg=_field(gt), cls_labels=np.array(cls_labels,
                                                            np.float32))
    for k in students:
        maps = dict(seg=seg, cam=cam, cam_aux=cam_aux)
        if k == 2:
            maps = {kind: np.zeros_like(gt).tolist() for kind in maps}
        for kind, values in maps.items():
            sample[f'pred_{kind}_s{k}'] = _field(values)
        sample[f'cls_logits_s{k}'] = torch.tensor(
            logits if k == 1 else [-1.] * len(logits))
    return sample


def _metric():
    metric = DualStudentMetric()
    metric.dataset_meta = dict(classes=CLASSES)
    return metric


def test_scores_of_known_label_maps():
    metric = _metric()
    # image 1: the GT's 255 pixel is excluded; over the 7 others, seg:
    # bg I=2 U=4, a I=2 U=3, b I=1 U=2; cam all bg: bg I=3 U=7, a 0/2, b 0/2
    gt1 = [[0, 0, 1, 1], [0, 2, 2, 255]]
    seg1 = [[0, 1, 1, 1], [0, 2, 0, 2]]
    cam1 = [[0] * 4, [0] * 4]
    aux1 = [[1, 1, 1, 1], [2, 2, 2, 2]]  # a I=2 U=4, b I=2 U=3, bg 0/3
    # image 2: everything 'a', predicted right by all three maps
    gt2 = [[1] * 4, [1] * 4]
    # F1: image 1 labels {a, b}, predicts {a, c}: TP 1, FP 1, FN 1 -> 0.5;
    # image 2 labels {a}, predicts {a}: 1.0
    metric.process({}, [
        _sample(gt1, seg1, cam1, aux1, [2., -1., .5], [1, 1, 0]),
        _sample(gt2, gt2, gt2, gt2, [1., -1., -1.], [1, 0, 0]),
    ])
    scores = metric.compute_metrics(metric.results)
    # areas summed over images: seg a I=2+8 U=3+8; class 'c' is absent
    # from GT and predictions (NaN IoU), so the means are over 3 classes
    assert scores['s1.seg_mIoU'] == pytest.approx(
        100 * (2 / 4 + 10 / 11 + 1 / 2) / 3, abs=0.01)
    assert scores['s1.cam_mIoU'] == pytest.approx(
        100 * (3 / 7 + 8 / 10 + 0 / 2) / 3, abs=0.01)
    assert scores['s1.cam_aux_mIoU'] == pytest.approx(
        100 * (0 / 3 + 10 / 12 + 2 / 3) / 3, abs=0.01)
    assert scores['s1.cls_F1'] == pytest.approx(75.)
    # student 2 predicts bg everywhere: bg I=3 U=7 (image 1) + 0/8
    assert scores['s2.seg_mIoU'] == pytest.approx(
        100 * (3 / 15 + 0 + 0) / 3, abs=0.01)
    assert scores['s2.cls_F1'] == 0.
    assert len(scores) == 8


def test_single_student_gives_four_scores():
    metric = _metric()
    gt = [[0, 1], [1, 2]]
    metric.process({}, [_sample(gt, gt, gt, gt, [1., 1., -1.], [1, 1, 0],
                                students=(1, ))])
    scores = metric.compute_metrics(metric.results)
    assert sorted(scores) == ['s1.cam_aux_mIoU', 's1.cam_mIoU',
                              's1.cls_F1', 's1.seg_mIoU']
    assert scores['s1.seg_mIoU'] == 100.


def test_missing_student_outputs_name_the_switch():
    metric = _metric()
    sample = dict(gt_sem_seg=_field([[0]]), cls_labels=np.ones(3),
                  img_path='x.jpg')
    with pytest.raises(KeyError, match='per_student_outputs.*x.jpg|x.jpg.*'
                       'per_student_outputs'):
        metric.process({}, [sample])


@pytest.mark.parametrize('logits, labels, f1', [
    ([1., 1., -1.], [1, 1, 0], 1.),
    ([1., -1., -1.], [1, 1, 0], 2 / 3),  # TP 1, FN 1
    ([-1., -1., -1.], [0, 0, 0], 0.),  # sklearn's zero_division default
    ([0., -1., -1.], [1, 0, 0], 0.),  # a logit of 0 is not positive
])
def test_multilabel_f1(logits, labels, f1):
    assert multilabel_f1(torch.tensor(logits),
                         torch.tensor(labels)) == pytest.approx(f1)
