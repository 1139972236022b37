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


def test_labels_dropping_a_mask_class_and_duplicated_entries(
        toy_data_root, tmp_path, capsys):
    # the probes of issue 23: image-level labels that drop a class the
    # mask has (181 images) gave 0 problems, and a split list naming a
    # file twice was accepted
    root = str(tmp_path / 'toy')
    shutil.copytree(toy_data_root, root)
    label_file = osp.join(root, 'cls_labels_onehot.npy')
    labels = np.load(label_file, allow_pickle=True).item()
    train = _names(root, 'train.txt')
    dropped = {}  # 3 images with two classes: drop the larger id
    for name in train:
        mask = np.array(Image.open(
            osp.join(root, 'SegmentationClass', f'{name}.png')))
        fg = [int(i) for i in np.unique(mask) if 0 < i < 255]
        if len(fg) >= 2 and len(dropped) < 3:
            labels[name][fg[-1] - 1] = 0
            dropped[name] = fg[-1]
    assert len(dropped) == 3
    # a label with an extra class is not a problem (VOC's XML labels list
    # objects the masks leave unlabelled)
    extra = next(n for n in train if n not in dropped)
    labels[extra][:] = 1
    np.save(label_file, labels)
    split = osp.join(root, 'ImageSets', 'Segmentation', 'val.txt')
    val = _names(root, 'val.txt')
    with open(split, 'a') as f:
        f.write(f'{val[5]}\n{val[0]}\n{val[5]}\n')
    assert verify_dataset.main([TOY_CONFIG] + _options(root)) == 1
    out = capsys.readouterr().out
    assert '  mask class not in the image-level label: 3' in out
    classes = ('background', 'aeroplane', 'bicycle', 'bird', 'boat',
               'bottle')
    for name, cls in dropped.items():
        line, = [ln for ln in out.splitlines() if f'{name}.png' in ln]
        assert f'class {cls} {classes[cls]} in the mask' in line
        assert f'label of {name}.jpg in {label_file}' in line
    assert extra not in out
    assert '  split entry duplicated: 2' in out
    assert f'{split}: {val[5]} on lines 6, 13, 15' in out
    assert f'{split}: {val[0]} on lines 1, 14' in out
    # each image is checked once; the count is that of the entries
    assert 'val_dataloader' in out and '15 images' in out
    assert ': 5 problems' in out
