# Copyright (c) OpenMMLab. All rights reserved.
"""tools/visualize_cams.py on the session toy checkpoint."""
import importlib.util
import os.path as osp

import numpy as np
import pytest
from mmengine.config import Config
from PIL import Image

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(REPO, 'tools', 'visualize_cams.py')
PAD, CAPTION = 2, 14
PALETTE = {(0, 0, 0), (128, 0, 0), (0, 128, 0), (128, 128, 0), (0, 0, 128),
           (128, 0, 128), (255, 255, 255)}
# single-scale CAMs keep the runs short (the default is 1.0, 0.5, 1.5)
FAST = ['--cfg-options', 'model.test_cfg.cam_scales=[1.0]']


def _tool():
    spec = importlib.util.spec_from_file_location('visualize_cams', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _panels(path, img_size):
    """Split an output row into its panels (without captions)."""
    row = np.array(Image.open(path).convert('RGB'))
    w, h = img_size
    assert row.shape[0] == h + CAPTION + 2 * PAD
    count = (row.shape[1] - PAD) // (w + PAD)
    assert row.shape[1] == PAD + count * (w + PAD)
    return [
        row[PAD + CAPTION:PAD + CAPTION + h,
            PAD + i * (w + PAD):PAD + i * (w + PAD) + w] for i in range(count)
    ]


def test_split_rows_have_a_cam_per_class_and_student(toy_checkpoint,
                                                     tmp_path):
    root = toy_checkpoint['data_root']
    _tool().main([
        toy_checkpoint['config'], toy_checkpoint['checkpoint'], '--split',
        'ImageSets/Segmentation/train.txt', '--num', '2', '--out-dir',
        str(tmp_path), '--device', 'cpu'
    ] + FAST)
    labels = np.load(
        osp.join(root, 'cls_labels_onehot.npy'), allow_pickle=True).item()
    with open(osp.join(root, 'ImageSets/Segmentation/train.txt')) as f:
        names = [ln.strip() for ln in f if ln.strip()][:2]
    assert sorted(p.name for p in tmp_path.iterdir()) == \
        sorted(n + '.png' for n in names)
    for name in names:
        jpg = osp.join(root, 'JPEGImages', name + '.jpg')
        size = Image.open(jpg).size
        panels = _panels(str(tmp_path / (name + '.png')), size)
        present = int(labels[name].sum())
        # image, a CAM per present class for 2 students, CAM and pseudo
        assert len(panels) == 1 + 2 * present + 2
        assert np.abs(panels[0].astype(int) -
                      np.array(Image.open(jpg).convert('RGB'))).max() == 0
        for label_panel in panels[-2:]:
            colours = set(map(tuple, label_panel.reshape(-1, 3).tolist()))
            assert colours <= PALETTE
        assert (255, 255, 255) not in set(
            map(tuple, panels[-2].reshape(-1, 3).tolist()))  # CAM: no 255


def test_images_with_labels_and_lookup(toy_checkpoint, tmp_path):
    root = toy_checkpoint['data_root']
    tool = _tool()
    val = osp.join(root, 'JPEGImages', 'val_00001.jpg')
    test = osp.join(root, 'JPEGImages', 'test_00000.jpg')
    base = [toy_checkpoint['config'], toy_checkpoint['checkpoint']]
    written = tool.main(base + [
        '--images', val, test, '--labels', 'boat,bird', '--out-dir',
        str(tmp_path / 'a'), '--device', 'cpu'
    ] + FAST)
    assert [osp.basename(p) for p in written] == ['val_00001.png',
                                                  'test_00000.png']
    panels = _panels(written[1], Image.open(test).size)
    assert len(panels) == 1 + 2 * 2 + 2
    # without --labels: val images are in the label file, test ones not
    cfg = Config.fromfile(toy_checkpoint['config'])
    classes, _ = tool.dataset_meta(cfg)
    items = tool.image_items(cfg, [val], None, classes)
    labels = np.load(
        osp.join(root, 'cls_labels_onehot.npy'), allow_pickle=True).item()
    assert (items[0]['cls_labels'] == labels['val_00001']).all()
    with pytest.raises(KeyError, match='--labels'):
        tool.main(base + ['--images', test, '--out-dir', str(tmp_path)])
    with pytest.raises(ValueError, match="unknown class 'dog'"):
        tool.main(base + [
            '--images', test, '--labels', 'dog', '--out-dir',
            str(tmp_path)
        ])
    with pytest.raises(SystemExit):
        tool.parse_args(base + ['--split', 's.txt', '--labels', 'boat',
                                '--out-dir', 'x'])
