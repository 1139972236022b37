# Copyright (c) OpenMMLab. All rights reserved.
"""Bad data: every case raises an error naming the file or key, or is
handled as documented (grayscale -> 3 channels, small images pass)."""
import io
import logging
from unittest import mock

import numpy as np
import pytest
from PIL import Image

from mmseg.registry import DATASETS
from mmseg_dupl.datasets.cls_labels import write_cls_labels
from mmseg_dupl.datasets.transforms.load_checked_image import \
    LoadCheckedImageFromFile

SPLIT = 'ImageSets/Segmentation/train.txt'


def _jpeg_bytes(h=24, w=32, seed=0):
    rgb = np.random.default_rng(seed).integers(0, 255, (h, w, 3), np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format='JPEG', quality=95)
    return buf.getvalue()


def _save_mask(label, path):
    h, w = label.shape
    png = Image.frombytes('P', (w, h), label.astype(np.uint8).tobytes())
    png.putpalette(list(range(256)) * 3)
    png.save(path)


def make_tree(root, masks, labels=None, jpeg=None):
    """VOC-layout tree; ``masks``: name -> (H, W) ids; ``jpeg``: name ->
    bytes overriding the image file (None: no image file at all)."""
    for sub in ('JPEGImages', 'SegmentationClassAug',
                'ImageSets/Segmentation'):
        (root / sub).mkdir(parents=True, exist_ok=True)
    jpeg = jpeg or {}
    for i, (name, mask) in enumerate(masks.items()):
        content = jpeg.get(name, _jpeg_bytes(*mask.shape, seed=i))
        if content is not None:
            (root / 'JPEGImages' / f'{name}.jpg').write_bytes(content)
        _save_mask(mask, root / 'SegmentationClassAug' / f'{name}.png')
    (root / SPLIT).write_text(''.join(n + '\n' for n in masks))
    if labels is not None:
        write_cls_labels(labels, str(root / 'cls_labels_onehot.npy'))
    return str(root)


def _fg(cls_id, h=24, w=32):
    mask = np.zeros((h, w), np.uint8)
    mask[4:12, 6:20] = cls_id
    return mask


def _build(root, **kwargs):
    cfg = dict(type='VOCWSSSDataset', data_root=root, ann_file=SPLIT)
    cfg.update(kwargs)
    return DATASETS.build(cfg)


def _load(path, **kwargs):
    return LoadCheckedImageFromFile(**kwargs)(dict(img_path=str(path)))


# ------------------------------------------------------------ build time
def test_missing_image_named_at_build_time(tmp_path):
    root = make_tree(tmp_path, {'a': _fg(1), 'b': _fg(2)}, jpeg={'b': None})
    with pytest.raises(FileNotFoundError, match=r'train\.txt.*b\.jpg'):
        _build(root)


def test_many_missing_images_listed_up_to_ten(tmp_path):
    names = {f'img{i:02d}': _fg(1) for i in range(13)}
    root = make_tree(tmp_path, names, jpeg={n: None for n in names})
    with pytest.raises(FileNotFoundError) as err:
        _build(root)
    msg = str(err.value)
    assert 'img09.jpg' in msg and 'img10.jpg' not in msg
    assert '13 in total' in msg


def test_missing_image_folder_named(tmp_path):
    root = make_tree(tmp_path, {'a': _fg(1)})
    with pytest.raises(FileNotFoundError, match='image folder.*Photos'):
        _build(root, data_prefix=dict(img_path='Photos', seg_map_path=''))


def test_mask_class_id_outside_dataset_named(tmp_path):
    root = make_tree(tmp_path, {'ok': _fg(20), 'bad': _fg(21)})
    with pytest.raises(ValueError, match=r'bad\.png.*\[21\]'):
        _build(root)


def test_image_missing_from_label_file_named(tmp_path):
    labels = {'a': np.eye(20)[0]}
    root = make_tree(tmp_path, {'a': _fg(1), 'b': _fg(2)}, labels)
    with pytest.raises(ValueError,
                       match=r'cls_labels_onehot\.npy: b \(1 in total\)'):
        _build(root, cls_label_file='cls_labels_onehot.npy')


def test_label_vector_of_wrong_length_named(tmp_path):
    root = make_tree(tmp_path, {'a': _fg(1), 'b': _fg(2)})
    # np.save directly: write_cls_labels itself refuses mixed lengths
    np.save(f'{root}/cls_labels_onehot.npy', {
        'a': np.eye(20)[0],
        'b': np.eye(80)[0]
    })
    with pytest.raises(ValueError, match=r"key 'b'.*length 80.*expected 20"):
        _build(root, cls_label_file='cls_labels_onehot.npy')


def test_training_image_without_foreground(tmp_path):
    bg_only = np.zeros((24, 32), np.uint8)
    bg_only[0, :] = 255
    root = make_tree(tmp_path, {'a': _fg(1), 'empty': bg_only})
    with pytest.raises(ValueError,
                       match=r'without any foreground.*empty.*'
                       r'allow_empty_labels'):
        _build(root)
    # documented escape hatch, and evaluation keeps such images
    for kwargs in (dict(allow_empty_labels=True), dict(test_mode=True)):
        ds = _build(root, **kwargs)
        assert len(ds) == 2
        assert not ds.get_data_info(1)['cls_labels'].any()


def test_training_image_without_foreground_in_label_file(tmp_path):
    labels = {'a': np.eye(20)[0], 'z': np.zeros(20)}
    root = make_tree(tmp_path, {'a': _fg(1), 'z': _fg(1)}, labels)
    with pytest.raises(ValueError, match=r'cls_labels_onehot\.npy.*z'):
        _build(root, cls_label_file='cls_labels_onehot.npy')


# ------------------------------------------------------------- load time
def test_corrupt_jpeg_named(tmp_path):
    bad = bytearray(_jpeg_bytes())
    bad[2:200] = b'\x00' * 198  # header destroyed
    path = tmp_path / 'corrupt.jpg'
    path.write_bytes(bytes(bad))
    with pytest.raises(OSError, match=r'corrupt\.jpg'):
        _load(path)
    path.write_bytes(b'this is not an image')
    with pytest.raises(OSError, match=r'cannot decode image .*corrupt\.jpg'):
        _load(path)


@pytest.mark.parametrize('backend', ['cv2', 'pillow'])
def test_truncated_jpeg_named(tmp_path, backend):
    # OpenCV alone would return a grey-filled image and only warn.
    full = _jpeg_bytes(64, 64)
    path = tmp_path / 'truncated.jpg'
    path.write_bytes(full[:len(full) * 2 // 3])
    with pytest.raises(OSError, match=r'truncated.*truncated\.jpg'):
        _load(path, imdecode_backend=backend)


def test_truncated_png_named(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(
        np.random.default_rng(0).integers(0, 255, (32, 32, 3),
                                          np.uint8)).save(buf, 'PNG')
    path = tmp_path / 'cut.png'
    path.write_bytes(buf.getvalue()[:-40])
    with pytest.raises(OSError, match=r'cut\.png'):
        _load(path)


def test_missing_and_empty_files_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r'not found: .*gone\.jpg'):
        _load(tmp_path / 'gone.jpg')
    (tmp_path / 'zero.jpg').write_bytes(b'')
    with pytest.raises(OSError, match=r'empty: .*zero\.jpg'):
        _load(tmp_path / 'zero.jpg')


def test_ignore_empty_skips_with_a_warning(tmp_path):
    (tmp_path / 'bad.jpg').write_bytes(b'garbage')
    module = 'mmseg_dupl.datasets.transforms.load_checked_image'
    with mock.patch(f'{module}.print_log') as log:
        assert _load(tmp_path / 'bad.jpg', ignore_empty=True) is None
        assert _load(tmp_path / 'gone.jpg', ignore_empty=True) is None
    messages = [c.args[0] for c in log.call_args_list]
    assert 'bad.jpg' in messages[0] and 'gone.jpg' in messages[1]
    assert all(c.kwargs['level'] == logging.WARNING
               for c in log.call_args_list)


def test_corrupt_image_through_dataset_names_file(tmp_path):
    root = make_tree(
        tmp_path, {'good': _fg(1), 'broken': _fg(2)},
        jpeg={'broken': b'\xff\xd8\xff\xe0 definitely not a jpeg'})
    ds = _build(root, pipeline=[dict(type='LoadCheckedImageFromFile')])
    assert ds[0]['img'].shape == (24, 32, 3)
    with pytest.raises(OSError, match=r'broken\.jpg'):
        ds[1]


def test_grayscale_jpeg_becomes_three_channels(tmp_path):
    gray = np.random.default_rng(1).integers(0, 255, (10, 14), np.uint8)
    path = tmp_path / 'gray.jpg'
    Image.fromarray(gray).save(path, quality=95)
    assert Image.open(path).mode == 'L'
    for backend in ('cv2', 'pillow'):
        out = _load(path, imdecode_backend=backend)
        img = out['img']
        assert img.shape == (10, 14, 3) and img.dtype == np.uint8
        np.testing.assert_array_equal(img[..., 0], img[..., 1])
        np.testing.assert_array_equal(img[..., 1], img[..., 2])
        assert out['img_shape'] == (10, 14)


def test_image_smaller_than_crop_passes_unchanged(tmp_path):
    small = np.random.default_rng(2).integers(0, 255, (9, 7, 3), np.uint8)
    path = tmp_path / 'small.png'
    Image.fromarray(small).save(path)  # lossless, so pixels are exact
    out = _load(path)
    assert out['img_shape'] == out['ori_shape'] == (9, 7)
    np.testing.assert_array_equal(out['img'], small[..., ::-1])  # BGR
