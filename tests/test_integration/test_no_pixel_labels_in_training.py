# Copyright (c) OpenMMLab. All rights reserved.
"""Training never sees pixel-level ground truth (the WSSS contract)."""
import glob
import json
import os.path as osp
import random
import shutil

import numpy as np
import torch
from mmengine.config import Config
from mmseg.registry import DATASETS

import mmseg_dupl  # noqa: F401

TOY_CONFIG = osp.join(
    osp.dirname(__file__), '..', '..', 'configs', 'dupl_vit-tiny_toy.py')


def _training_samples(data_root: str, count: int = 12) -> list:
    """The first ``count`` training samples, with every RNG seeded."""
    cfg = Config.fromfile(TOY_CONFIG)
    dataset_cfg = cfg.train_dataloader.dataset
    dataset_cfg.data_root = data_root
    dataset = DATASETS.build(dataset_cfg)
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    return [dataset[i] for i in range(count)]


def _fingerprint(sample: dict) -> list:
    """Bytes of every tensor and metainfo array of both branches."""
    parts = []
    for branch in ('weak', 'strong'):
        parts.append(sample['inputs'][branch].numpy().tobytes())
        meta = sample['data_samples'][branch].metainfo
        for key in sorted(meta):
            parts.append(key.encode() + repr(meta[key]).encode())
    return parts


def test_training_batches_carry_no_masks_and_ignore_mask_files(
        toy_data_root, tmp_path):
    root = str(tmp_path / 'toy')
    shutil.copytree(toy_data_root, root)
    clean = _training_samples(root)
    for sample in clean:
        for branch in ('weak', 'strong'):
            data_sample = sample['data_samples'][branch]
            assert 'gt_sem_seg' not in data_sample
            assert 'cls_labels' in data_sample.metainfo
        assert 'img_box' in sample['data_samples']['weak'].metainfo

    masks = glob.glob(osp.join(root, 'SegmentationClass', '*.png'))
    assert masks, 'the fixture must have masks for this test to mean much'
    rng = np.random.default_rng(0)
    for path in masks:
        with open(path, 'wb') as f:
            f.write(rng.integers(0, 256, 500, dtype=np.uint8).tobytes())
    garbage = _training_samples(root)
    for a, b in zip(clean, garbage):
        assert _fingerprint(a) == _fingerprint(b)


# --------------------------------------------------------------------------
# With PseudoLabelMonitorHook on, the masks are read by the hook only.
MONITOR = dict(type='PseudoLabelMonitorHook', interval=1, num_images=2,
               batch_size=2)
MONITOR_ITERS = 4  # phase A at 0, seg labels from 1, GMM filter from 3


def _rotate_masks(root: str) -> None:
    """Turn every mask by 180 degrees: the same classes (so the same
    image-level labels) at other pixels."""
    from PIL import Image
    for path in glob.glob(osp.join(root, 'SegmentationClass', '*.png')):
        with Image.open(path) as image:
            palette = image.getpalette()
            turned = Image.fromarray(np.asarray(image)[::-1, ::-1].copy())
        if palette:
            turned.putpalette(palette)
        turned.save(path)


def _train(data_root: str, work_dir: str) -> dict:
    """A 4-iteration toy run with the monitor; its losses, weights and
    monitor scalars."""
    from toy_runner import short_toy_options, toy_config

    from mmseg_dupl.engine.runners import build_runner
    options = short_toy_options(data_root, MONITOR_ITERS) + [
        'train_dataloader.batch_size=2',
        f'default_hooks.checkpoint.interval={MONITOR_ITERS}'
    ]
    cfg = toy_config(work_dir, options)
    cfg.custom_hooks = list(cfg.custom_hooks) + [MONITOR]
    runner = build_runner(cfg)
    model = runner.train()
    hub = runner.message_hub
    scalars = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    with open(scalars[0]) as f:
        steps = [r['step'] for r in map(json.loads, f)
                 if 'monitor/s1.cam_mIoU' in r]
    return dict(
        losses=hub.get_scalar('train/loss').data[0].tolist(),
        weights={k: v.detach().clone()
                 for k, v in model.state_dict().items()},
        monitor={
            k: hub.get_scalar(k).data[0].tolist()
            for k in hub.log_scalars if k.startswith('monitor/')
        },
        monitor_steps=steps)


def test_monitor_reads_masks_that_training_never_sees(toy_data_root,
                                                      tmp_path):
    rotated = str(tmp_path / 'rotated')
    shutil.copytree(toy_data_root, rotated)
    _rotate_masks(rotated)
    runs = dict(
        masks=_train(toy_data_root, str(tmp_path / 'a')),
        rotated=_train(rotated, str(tmp_path / 'b')))
    # training is the same with other masks (that the monitor draws no
    # random numbers, so trains as a run without it, is
    # tests/test_engine/test_pseudo_label_monitor_hook.py's)
    reference = runs['masks']
    assert len(reference['losses']) == MONITOR_ITERS
    assert runs['rotated']['losses'] == reference['losses']
    for key, value in reference['weights'].items():
        assert torch.equal(runs['rotated']['weights'][key], value), key
    # the monitor reads the masks: the same labels score differently
    monitor = runs['masks']['monitor']
    assert monitor != runs['rotated']['monitor']
    assert monitor['monitor/s1.cam_mIoU'] != \
        runs['rotated']['monitor']['monitor/s1.cam_mIoU']
    # every iteration and the end; the filter's scores from phases.gmm on
    assert runs['masks']['monitor_steps'] == [0, 1, 2, 3, 4]
    assert len(monitor['monitor/s2.pseudo_mIoU']) == 5
    assert len(monitor['monitor/s1.filtered_mIoU']) == 2
