# Copyright (c) OpenMMLab. All rights reserved.
"""tools/verify_dataset.py reports every problem of a dataset at once."""
import importlib.util
import os
import os.path as osp
import shutil

import numpy as np
import pytest
from conftest import REPO, TOY_CONFIG
from PIL import Image

spec = importlib.util.spec_from_file_location(
    'verify_dataset', osp.join(REPO, 'tools', 'verify_dataset.py'))
verify_dataset = importlib.util.module_from_spec(spec)
spec.loader.exec_module(verify_dataset)


def _options(root: str) -> list:
    return ['--workers', '2', '--cfg-options'] + [
        f'{loader}.dataset.data_root={root}'
        for loader in ('train_dataloader', 'val_dataloader',
                       'test_dataloader')
    ]


def _names(root: str, split: str) -> list:
    with open(osp.join(root, 'ImageSets', 'Segmentation', split)) as f:
        return [ln.strip() for ln in f if ln.strip()]


def test_clean_toy_set_passes(toy_data_root, capsys):
    assert verify_dataset.main([TOY_CONFIG] + _options(toy_data_root)) == 0
    out = capsys.readouterr().out
    assert '0 problems' in out and 'train_dataloader' in out


@pytest.fixture
def broken_root(toy_data_root, tmp_path) -> str:
    root = str(tmp_path / 'toy')
    shutil.copytree(toy_data_root, root)
    train, val = _names(root, 'train.txt'), _names(root, 'val.txt')
    img = osp.join(root, 'JPEGImages', '{}.jpg')
    mask = osp.join(root, 'SegmentationClass', '{}.png')
    # two truncated images, one missing image
    for name in train[:2]:
        with open(img.format(name), 'r+b') as f:
            f.truncate(os.path.getsize(img.format(name)) // 2)
    os.remove(img.format(train[2]))
    # a val mask with id 99, one of another size, one missing
    arr = np.array(Image.open(mask.format(val[0])))
    arr[0, 0] = 99
    Image.fromarray(arr, mode='L').save(mask.format(val[0]))
    arr = np.array(Image.open(mask.format(val[1])))
    Image.fromarray(arr[:-3], mode='L').save(mask.format(val[1]))
    os.remove(mask.format(val[2]))
    # an image the label file does not list
    labels = np.load(osp.join(root, 'cls_labels_onehot.npy'),
                     allow_pickle=True).item()
    del labels[train[3]]
    np.save(osp.join(root, 'cls_labels_onehot.npy'), labels)
    return root


def test_every_problem_reported_with_counts(broken_root, capsys):
    assert verify_dataset.main([TOY_CONFIG] + _options(broken_root)) == 1
    out = capsys.readouterr().out
    train, val = _names(broken_root, 'train.txt'), _names(broken_root,
                                                         'val.txt')
    assert '  image unreadable: 3' in out
    assert '  mask ids outside the classes: 1' in out
    assert '  mask size differs from image: 1' in out
    assert '  mask unreadable: 1' in out
    assert '  image without a label: 1' in out
    for name in train[:4] + val[:3]:
        assert name in out, name
    assert 'checked 52 images' in out and ': 7 problems' in out


def test_malformed_label_file(toy_data_root, tmp_path, capsys):
    root = str(tmp_path / 'toy')
    shutil.copytree(toy_data_root, root)
    with open(osp.join(root, 'cls_labels_onehot.npy'), 'wb') as f:
        f.write(b'not a numpy file')
    assert verify_dataset.main([TOY_CONFIG] + _options(root)) == 1
    assert 'label file malformed: 1' in capsys.readouterr().out
