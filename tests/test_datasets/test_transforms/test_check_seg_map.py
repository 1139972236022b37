# Copyright (c) OpenMMLab. All rights reserved.
"""The configs' eval pipelines (mmseg's loader names + CheckSegMap) refuse
a val mask with foreign ids or another size, naming it, and pass images
without masks (what mmseg's inference API feeds them)."""
import os.path as osp
import shutil

import numpy as np
import pytest
from mmcv.transforms import Compose
from mmengine.config import Config
from PIL import Image

from mmseg.registry import DATASETS, TRANSFORMS
import mmseg_dupl  # noqa: F401

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))


def _val_dataset(root: str):
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'dupl_vit-tiny_toy.py'))
    names = [t['type'] for t in cfg.test_pipeline]
    assert names[0] == 'LoadImageFromFile' and 'LoadAnnotations' in names
    assert names[names.index('LoadAnnotations') + 1] == 'CheckSegMap'
    dataset_cfg = cfg.test_dataloader.dataset
    dataset_cfg.data_root = root
    return DATASETS.build(dataset_cfg)


@pytest.fixture
def toy_copy(toy_data_root, tmp_path):
    root = str(tmp_path / 'toy')
    shutil.copytree(toy_data_root, root)
    return root


def test_clean_masks_pass(toy_data_root):
    dataset = _val_dataset(toy_data_root)
    assert dataset[0]['data_samples'].gt_sem_seg.data.max() <= 255


def test_foreign_id_is_named(toy_copy):
    dataset = _val_dataset(toy_copy)
    path = dataset.get_data_info(0)['seg_map_path']
    mask = np.array(Image.open(path))
    mask[0, :2] = 42
    Image.fromarray(mask).save(path)
    with pytest.raises(ValueError, match=rf'{path}: class ids \[42\]'):
        dataset[0]


def test_size_mismatch_is_named(toy_copy):
    dataset = _val_dataset(toy_copy)
    path = dataset.get_data_info(0)['seg_map_path']
    Image.fromarray(np.array(Image.open(path))[:-3]).save(path)
    with pytest.raises(ValueError, match=rf'{path} is .* but its image'):
        dataset[0]


def test_no_mask_passes_through():
    check = TRANSFORMS.build(dict(type='CheckSegMap', num_classes=3))
    results = dict(img=np.zeros((4, 4, 3), np.uint8), ori_shape=(4, 4))
    assert check(dict(results)).keys() == results.keys()
    bad = dict(results, gt_seg_map=np.full((4, 4), 7, np.uint8),
               seg_map_path='m.png')
    with pytest.raises(ValueError, match=r'm\.png: class ids \[7\]'):
        check(bad)
    assert 'CheckSegMap(num_classes=3' in repr(check)


def test_inference_pipeline_without_annotations(toy_data_root):
    """mmseg's inference_model drops LoadAnnotations: the rest runs."""
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'dupl_vit-tiny_toy.py'))
    steps = [t for t in cfg.test_pipeline if t['type'] != 'LoadAnnotations']
    image = osp.join(toy_data_root, 'JPEGImages', 'val_00000.jpg')
    out = Compose(steps)(dict(img_path=image))
    assert out['inputs'].shape == (3, 128, 128)
    assert 'gt_sem_seg' not in out['data_samples']
