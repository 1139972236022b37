# Copyright (c) OpenMMLab. All rights reserved.
"""The README's TensorBoard option: the toy config logs its training
scalars, its validation scores (DualStudentMetric's included), and the
CAMVisualizationHook its images, to a TensorBoard event file."""
import glob
import os.path as osp

from conftest import TOY_CONFIG, toy_train_options
from mmengine.config import Config
from stock_config_utils import run_train

# The exact string of the README's TensorBoard section.
TENSORBOARD_OPTION = 'visualizer.vis_backends.0.type=TensorboardVisBackend'


def test_tensorboard_option_writes_loss_scalars(toy_data_root, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import \
        EventAccumulator
    work_dir = str(tmp_path / 'work')
    options = toy_train_options(toy_data_root, max_iters=6, cam=2, gmm=4) + [
        'val_dataloader.dataset.indices=2',
        'default_hooks.logger.interval=1', TENSORBOARD_OPTION
    ]
    hooks = [
        dict(h) for h in Config.fromfile(TOY_CONFIG).get('custom_hooks', [])
    ]
    hooks.append(dict(type='CAMVisualizationHook', interval=6))
    config = tmp_path / 'toy_with_cams.py'
    config.write_text(f'_base_ = [{TOY_CONFIG!r}]\ncustom_hooks = {hooks!r}\n')
    run_train(str(config), work_dir, options, cwd=str(tmp_path))
    events = glob.glob(
        osp.join(work_dir, '*', 'vis_data', 'events.out.tfevents.*'))
    assert len(events) == 1, glob.glob(osp.join(work_dir, '**'),
                                       recursive=True)
    acc = EventAccumulator(events[0])
    acc.Reload()
    tags = acc.Tags()['scalars']
    assert 'loss' in tags and 'lr' in tags
    assert [e.step for e in acc.Scalars('loss')] == [1, 2, 3, 4, 5, 6]
    # the validation at 6: per student, the reference's scores
    for k in (1, 2):
        for name in ('seg_mIoU', 'cam_mIoU', 'cam_aux_mIoU', 'cls_F1'):
            assert [e.step for e in acc.Scalars(f's{k}.{name}')] == [6]
    images = acc.Tags()['images']
    assert any('dupl_cams' in tag for tag in images), images
