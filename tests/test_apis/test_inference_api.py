# Copyright (c) OpenMMLab. All rights reserved.
"""mmseg's inference API on a DuPL checkpoint (the session toy checkpoint):
``init_model`` + ``inference_model`` (paths and arrays),
``show_result_pyplot`` and ``MMSegInferencer`` (visualisation and
``pred/``) predict exactly what ``tools/test.py --out`` writes, for student
1 and for the ensemble."""
import glob
import os.path as osp
import subprocess
import sys

import mmcv
import numpy as np
import pytest
from mmengine.config import Config
from mmseg.apis import (MMSegInferencer, inference_model, init_model,
                        show_result_pyplot)
from PIL import Image

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
STUDENTS = ('s1', 'ensemble')


def _val_images(data_root: str) -> list:
    split = osp.join(data_root, 'ImageSets', 'Segmentation', 'val.txt')
    names = open(split).read().split()
    return [osp.join(data_root, 'JPEGImages', n + '.jpg') for n in names]


@pytest.fixture(scope='module')
def tool_preds(toy_checkpoint, tmp_path_factory) -> dict:
    """``{student: {image name: label map}}`` written by tools/test.py
    --out."""
    preds = {}
    for student in STUDENTS:
        out = tmp_path_factory.mktemp(f'test_out_{student}')
        proc = subprocess.run([
            sys.executable,
            osp.join(REPO, 'tools', 'test.py'), toy_checkpoint['config'],
            toy_checkpoint['checkpoint'], '--out',
            str(out), '--work-dir',
            str(out / 'work'), '--cfg-options',
            f'model.test_cfg.student={student}',
            'test_dataloader.num_workers=0',
            'test_dataloader.persistent_workers=False'
        ], cwd=REPO, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        preds[student] = {
            osp.splitext(osp.basename(p))[0]: np.array(Image.open(p))
            for p in glob.glob(str(out / '*.png'))
        }
    assert len(preds['s1']) == len(_val_images(toy_checkpoint['data_root']))
    return preds


def _stem(path: str) -> str:
    return osp.splitext(osp.basename(path))[0]


@pytest.mark.parametrize('student', STUDENTS)
def test_init_model_and_inference_model(toy_checkpoint, tool_preds,
                                        student):
    model = init_model(
        toy_checkpoint['config'],
        toy_checkpoint['checkpoint'],
        device='cpu',
        cfg_options={'model.test_cfg.student': student})
    assert model.test_cfg['student'] == student
    assert model.dataset_meta['classes'][0] == 'background'
    images = _val_images(toy_checkpoint['data_root'])
    results = inference_model(model, images)
    assert len(results) == len(images)
    for path, result in zip(images, results):
        pred = result.pred_sem_seg.data[0].numpy()
        np.testing.assert_array_equal(pred, tool_preds[student][_stem(path)])
    # an array (BGR, as mmcv reads it) predicts the same as its path
    array_result = inference_model(model, mmcv.imread(images[0]))
    np.testing.assert_array_equal(
        array_result.pred_sem_seg.data[0].numpy(),
        tool_preds[student][_stem(images[0])])


def test_students_predict_differently(tool_preds):
    differ = [
        name for name in tool_preds['s1']
        if (tool_preds['s1'][name] != tool_preds['ensemble'][name]).any()
    ]
    assert differ, 'the ensemble choice did not reach the prediction'


def test_show_result_pyplot(toy_checkpoint, tmp_path):
    model = init_model(
        toy_checkpoint['config'], toy_checkpoint['checkpoint'], device='cpu')
    image = _val_images(toy_checkpoint['data_root'])[0]
    result = inference_model(model, image)
    out_file = str(tmp_path / 'shown.png')
    drawn = show_result_pyplot(
        model, image, result, show=False, out_file=out_file, opacity=0.5)
    raw = mmcv.imread(image, channel_order='rgb')
    assert drawn.shape == raw.shape
    assert osp.isfile(out_file)
    assert np.abs(drawn.astype(int) - raw.astype(int)).mean() > 1  # overlay


@pytest.mark.parametrize('student', STUDENTS)
def test_mmseg_inferencer(toy_checkpoint, tool_preds, tmp_path, student):
    cfg = Config.fromfile(toy_checkpoint['config'])
    cfg.model.test_cfg.student = student
    inferencer = MMSegInferencer(
        model=cfg, weights=toy_checkpoint['checkpoint'], device='cpu')
    images = _val_images(toy_checkpoint['data_root'])[:4]
    out = inferencer(images, out_dir=str(tmp_path))
    assert len(out['predictions']) == len(images)
    vis = sorted(glob.glob(str(tmp_path / 'vis' / '*')))
    pred = sorted(glob.glob(str(tmp_path / 'pred' / '*_pred.png')))
    assert [_stem(p) for p in vis] == [_stem(p) for p in images]
    assert len(pred) == len(images)
    for path, png, array in zip(images, pred, out['predictions']):
        expected = tool_preds[student][_stem(path)]
        np.testing.assert_array_equal(np.array(Image.open(png)), expected)
        np.testing.assert_array_equal(array, expected)
