# Copyright (c) OpenMMLab. All rights reserved.
"""Val/test masks with ids outside the classes or another size than their
image, and class counts that disagree, fail early and named (issue 11)."""
import os
import os.path as osp
import shutil

import numpy as np
import pytest
from PIL import Image, UnidentifiedImageError
from toy_runner import short_toy_options, toy_config

from mmseg.registry import DATASETS, TRANSFORMS
from mmseg_dupl.engine.runners import build_runner

PIPELINE = [
    dict(type='LoadCheckedImageFromFile'),
    dict(type='Resize', scale=(64, 64), keep_ratio=False),
    dict(type='LoadCheckedAnnotations'),
    dict(type='PackWSSSInputs'),
]


def _write_mask(path: str, mask: np.ndarray) -> None:
    png = Image.fromarray(mask.astype(np.uint8), mode='L')
    png.save(path)


@pytest.fixture
def toy_copy(toy_data_root, tmp_path):
    root = str(tmp_path / 'toy')
    shutil.copytree(toy_data_root, root)
    return root


def _val_dataset(root: str):
    return DATASETS.build(
        dict(
            type='VOCWSSSDataset',
            data_root=root,
            ann_file='ImageSets/Segmentation/val.txt',
            data_prefix=dict(
                img_path='JPEGImages', seg_map_path='SegmentationClass'),
            metainfo=dict(classes=('background', 'aeroplane', 'bicycle',
                                   'bird', 'boat', 'bottle')),
            test_mode=True,
            pipeline=PIPELINE))


def _first_mask(dataset) -> str:
    return dataset.get_data_info(0)['seg_map_path']


def test_clean_val_masks_load(toy_data_root):
    dataset = _val_dataset(toy_data_root)
    for i in range(len(dataset)):
        assert dataset[i]['data_samples'].gt_sem_seg.data.max() <= 255


def _edit_first_mask(root: str, edit) -> tuple:
    """The val dataset after ``edit(mask)`` of its first mask, and that
    mask's path."""
    dataset = _val_dataset(root)
    path = _first_mask(dataset)
    _write_mask(path, edit(np.array(Image.open(path))))
    return dataset, path


def _set_corner(value: int):
    def edit(mask):
        mask[0, :3] = value
        return mask

    return edit


def test_class_id_99_named(toy_copy):
    dataset, path = _edit_first_mask(toy_copy, _set_corner(99))
    with pytest.raises(ValueError, match=rf'{path}.*\[99\].*0\.\.5'):
        dataset[0]


def test_ignore_index_is_allowed(toy_copy):
    dataset, _ = _edit_first_mask(toy_copy, _set_corner(255))
    assert (dataset[0]['data_samples'].gt_sem_seg.data == 255).any()


def test_size_mismatch_named(toy_copy):
    dataset, path = _edit_first_mask(toy_copy, lambda mask: mask[:-5])
    img = dataset.get_data_info(0)['img_path']
    with pytest.raises(ValueError, match=rf'{path} is .* its image {img}'):
        dataset[0]


def test_explicit_num_classes(tmp_path):
    path = str(tmp_path / 'm.png')
    _write_mask(path, np.array([[0, 3], [255, 2]]))
    load = TRANSFORMS.build(dict(type='LoadCheckedAnnotations',
                                 num_classes=3))
    with pytest.raises(ValueError, match=r'm\.png.*\[3\]'):
        load(dict(seg_map_path=path, reduce_zero_label=False,
                  seg_fields=[]))


def test_model_num_classes_disagreeing_names_both_keys(toy_data_root,
                                                       tmp_path):
    options = short_toy_options(toy_data_root, max_iters=4) + [
        'model.num_classes=4'
    ]
    runner = build_runner(toy_config(str(tmp_path), options))
    with pytest.raises(ValueError) as err:
        runner.train()
    text = str(err.value)
    assert 'model.num_classes=4' in text
    assert 'train_dataloader.dataset.metainfo.classes has 6' in text
    assert not osp.exists(tmp_path / 'iter_2.pth')


def test_zero_byte_mask_named(toy_copy):
    # the probe of issue 23 (tools/test.py): "PIL.UnidentifiedImageError:
    # cannot identify image file <_io.BytesIO ...>", no file name
    dataset = _val_dataset(toy_copy)
    path = _first_mask(dataset)
    open(path, 'wb').close()
    with pytest.raises(OSError) as err:
        dataset[0]
    assert str(err.value).startswith(
        f'cannot read segmentation mask {path} (0 bytes): '
        'UnidentifiedImageError')
    assert isinstance(err.value.__cause__, UnidentifiedImageError)


def test_missing_and_undecodable_masks_named(toy_copy):
    dataset = _val_dataset(toy_copy)
    first, second = _first_mask(dataset), dataset.get_data_info(1)[
        'seg_map_path']
    os.remove(first)
    with pytest.raises(FileNotFoundError,
                       match=rf'segmentation mask not found: {first}'):
        dataset[0]
    with open(second, 'wb') as f:
        f.write(b'\x89PNG\r\n\x1a\n truncated')
    size = os.path.getsize(second)
    with pytest.raises(OSError, match=rf'cannot read segmentation mask '
                       rf'{second} \({size} bytes\)'):
        dataset[1]
