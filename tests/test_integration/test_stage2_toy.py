# Copyright (c) OpenMMLab. All rights reserved.
"""The quick check's stage-2 config (projects_readme.md): mmseg's SegFormer
on the toy set's six classes at 128 px, its 20k recipe scaled to a short
run, logs from the first iterations and scores the toy classes only."""
import os.path as osp
import re

from stock_config_utils import REPO, run_train

TOY_STAGE2 = osp.join(REPO, 'configs', 'stage2',
                      'segformer_mit-b0_1xb4-20k_pseudo-toy-128x128.py')
TOY_CLASSES = ('background', 'aeroplane', 'bicycle', 'bird', 'boat',
               'bottle')


def test_toy_stage2_logs_early_and_scores_six_classes(toy_data_root,
                                                      tmp_path):
    # the ground-truth masks stand in for exported pseudo labels
    labels = osp.join(toy_data_root, 'SegmentationClass')
    log = run_train(TOY_STAGE2, str(tmp_path / 'work'), [
        f'train_dataloader.dataset.data_root={toy_data_root}',
        f'val_dataloader.dataset.data_root={toy_data_root}',
        f'test_dataloader.dataset.data_root={toy_data_root}',
        f'train_dataloader.dataset.data_prefix.seg_map_path={labels}',
        'train_cfg.max_iters=10', 'scale_schedule=True'
    ], cwd=str(tmp_path))
    assert 'scale_schedule: 20000 -> 10 iterations' in log
    assert re.search(r'Iter\(train\) +\[10/10\]', log), log[-3000:]
    assert re.search(r'Iter\(val\) +\[12/12\]', log), log[-3000:]
    table = log[log.rindex('per class results'):]
    rows = re.findall(r'^\|\s*(\w+)\s*\|', table, flags=re.M)
    assert tuple(r for r in rows if r != 'Class') == TOY_CLASSES
    assert re.search(r'mIoU: [0-9.]+', table)
    assert osp.isfile(tmp_path / 'work' / 'iter_10.pth')
