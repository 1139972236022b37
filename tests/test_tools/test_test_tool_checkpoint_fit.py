# Copyright (c) OpenMMLab. All rights reserved.
"""tools/test.py refuses a checkpoint that does not fit the model, and
tests a single-student checkpoint with either student (issue 11, item 3)."""
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config

from mmseg_dupl.engine.runners import build_runner
from mmseg_dupl.utils.checked_load import CheckpointMismatchError

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TEST_TOOL = osp.join(REPO, 'tools', 'test.py')
NO_WORKERS = {
    'test_dataloader.num_workers': 0,
    'test_dataloader.persistent_workers': False,
}


def _save_variant(toy: dict, path: str, edit) -> str:
    checkpoint = torch.load(toy['checkpoint'], map_location='cpu')
    edit(checkpoint['state_dict'])
    torch.save(checkpoint, path)
    return path


def _other_shapes(state: dict) -> None:
    # a checkpoint of a model with another classifier width
    for key in ('student1.classifier.weight', 'student2.classifier.weight'):
        state[key] = state[key][:-1].clone()


def _baseline(state: dict) -> None:
    # what the num_students=1 baseline saves: student1.* and high_thr
    for key in [k for k in state if k.startswith('student2.')]:
        del state[key]


def _test_metrics(toy: dict, checkpoint: str, work_dir: str,
                  **options) -> dict:
    cfg = Config.fromfile(toy['config'])
    cfg.merge_from_dict({**NO_WORKERS, **options})
    cfg.work_dir = work_dir
    cfg.experiment_name = f'fit_{osp.basename(work_dir)}'
    cfg.load_from = checkpoint
    return build_runner(cfg).test()


def test_cli_other_shapes_exit_nonzero_naming_keys(toy_checkpoint,
                                                   tmp_path):
    ckpt = _save_variant(toy_checkpoint, str(tmp_path / 'other.pth'),
                         _other_shapes)
    base = [sys.executable, TEST_TOOL, toy_checkpoint['config'], ckpt,
            '--work-dir', str(tmp_path / 'work'), '--cfg-options'] + [
                f'{k}={v}' for k, v in NO_WORKERS.items()]
    proc = subprocess.run(base, cwd=REPO, capture_output=True, text=True,
                          timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert 'CheckpointMismatchError' in log and 'other.pth' in log
    assert 'student1.classifier.weight' in log
    assert 'Iter(test)' not in log  # no score printed
    partial = subprocess.run(
        base[:4] + ['--allow-partial-load'] + base[4:], cwd=REPO,
        capture_output=True, text=True, timeout=600)
    assert partial.returncode == 0, partial.stderr[-3000:]
    assert 'continuing with a partial load' in partial.stdout + \
        partial.stderr


def test_baseline_checkpoint_fills_student2(toy_checkpoint, tmp_path):
    ckpt = _save_variant(toy_checkpoint, str(tmp_path / 'baseline.pth'),
                         _baseline)
    s1 = _test_metrics(toy_checkpoint, ckpt, str(tmp_path / 's1'))
    s2 = _test_metrics(toy_checkpoint, ckpt, str(tmp_path / 's2'),
                       **{'model.test_cfg.student': 's2'})
    assert s2['mIoU'] == pytest.approx(s1['mIoU'])


def test_load_from_missing_tensors_raises(toy_checkpoint, tmp_path):
    def drop_head(state):
        for key in [k for k in state if 'decode_head' in k]:
            del state[key]

    ckpt = _save_variant(toy_checkpoint, str(tmp_path / 'nohead.pth'),
                         drop_head)
    with pytest.raises(CheckpointMismatchError,
                       match=r'nohead\.pth[\s\S]*missing: student1\.decode'):
        _test_metrics(toy_checkpoint, ckpt, str(tmp_path / 'w'))
