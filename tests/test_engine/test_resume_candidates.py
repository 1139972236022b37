# Copyright (c) OpenMMLab. All rights reserved.
"""Which checkpoint --resume picks (CheckedRunner's choice)."""
import logging
import os
import shutil

import pytest
import torch
from mmengine.hooks import CheckpointHook

from mmseg_dupl.engine.runners.resume_candidates import (
    checkpoint_out_dirs, checkpoints_newest_first, choose_resume_checkpoint,
    probe_checkpoint)
from mmseg_dupl.utils.durable_io import write_text_durably

LOGGER = logging.getLogger('test_resume_candidates')


def _ckpt(folder, step, truncate=False) -> str:
    path = str(folder / f'iter_{step}.pth')
    torch.save(dict(meta=dict(iter=step), state_dict={}), path)
    if truncate:
        with open(path, 'r+b') as f:
            f.truncate(os.path.getsize(path) // 2)
    return path


def test_numeric_order_and_tmp_ignored(tmp_path):
    for step in (2, 10, 4):
        _ckpt(tmp_path, step)
    (tmp_path / 'iter_12.pth.tmp').write_bytes(b'partial')
    names = [os.path.basename(p) for p in checkpoints_newest_first(
        str(tmp_path))]
    assert names == ['iter_10.pth', 'iter_4.pth', 'iter_2.pth']


def test_empty_pointer_truncated_newest(tmp_path, caplog):
    older = _ckpt(tmp_path, 20)
    newest = _ckpt(tmp_path, 30, truncate=True)
    (tmp_path / 'last_checkpoint').write_text('')
    with caplog.at_level(logging.INFO, logger=LOGGER.name):
        assert choose_resume_checkpoint(str(tmp_path), LOGGER) == older
    text = caplog.text
    assert newest in text and 'is empty' in text and older in text


def test_dangling_pointer(tmp_path):
    path = _ckpt(tmp_path, 20)
    write_text_durably(str(tmp_path / 'last_checkpoint'),
                       str(tmp_path / 'iter_40.pth'))
    assert choose_resume_checkpoint(str(tmp_path), LOGGER) == path


def test_newer_than_pointer_wins(tmp_path):
    # the pointer update of iter_30 was interrupted; iter_30 is complete
    older, newest = _ckpt(tmp_path, 20), _ckpt(tmp_path, 30)
    write_text_durably(str(tmp_path / 'last_checkpoint'), older)
    assert choose_resume_checkpoint(str(tmp_path), LOGGER) == newest


def test_nothing_saved_starts_from_scratch(tmp_path):
    assert choose_resume_checkpoint(str(tmp_path), LOGGER) is None


def test_none_loads_raises_listing_each(tmp_path):
    a = _ckpt(tmp_path, 2, truncate=True)
    b = _ckpt(tmp_path, 4, truncate=True)
    with pytest.raises(RuntimeError) as err:
        choose_resume_checkpoint(str(tmp_path), LOGGER)
    assert a in str(err.value) and b in str(err.value)


def test_copied_work_dir_resumes_from_its_own_checkpoints(tmp_path, caplog):
    # the probe of issue 23: `cp -r` of a work dir keeps a pointer to the
    # original's checkpoint; the original then trained on to iter_12, which
    # the copy resumed from although it never held it
    original, copy = tmp_path / 'run', tmp_path / 'run_copy'
    original.mkdir()
    _ckpt(original, 4)
    write_text_durably(str(original / 'last_checkpoint'),
                       _ckpt(original, 8))
    shutil.copytree(original, copy)
    _ckpt(original, 12)
    with caplog.at_level(logging.INFO, logger=LOGGER.name):
        chosen = choose_resume_checkpoint(str(copy), LOGGER)
    assert chosen == str(copy / 'iter_8.pth')
    warnings = [r.getMessage() for r in caplog.records
                if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert str(original / 'iter_8.pth') in warnings[0]
    assert 'outside the work dir' in warnings[0]
    # the original itself is unaffected
    assert choose_resume_checkpoint(str(original), LOGGER) == str(
        original / 'iter_12.pth')


def test_pointer_outside_and_nothing_inside_starts_from_scratch(tmp_path):
    other, work_dir = tmp_path / 'other', tmp_path / 'work'
    other.mkdir()
    work_dir.mkdir()
    write_text_durably(str(work_dir / 'last_checkpoint'), _ckpt(other, 8))
    assert choose_resume_checkpoint(str(work_dir), LOGGER) is None


def test_checkpoint_hook_out_dir_is_the_runs_own(tmp_path, caplog):
    # CheckpointHook(out_dir=...) saves into out_dir/<work dir name> and
    # writes the pointer in work_dir: not "outside"
    work_dir, out_root = tmp_path / 'work', tmp_path / 'ckpts'
    work_dir.mkdir()
    (out_root / 'work').mkdir(parents=True)
    hooks = [CheckpointHook(interval=2, out_dir=str(out_root))]
    out_dirs = checkpoint_out_dirs(str(work_dir), hooks)
    assert out_dirs == [str(out_root / 'work')]
    write_text_durably(str(work_dir / 'last_checkpoint'),
                       _ckpt(out_root / 'work', 6))
    with caplog.at_level(logging.INFO, logger=LOGGER.name):
        chosen = choose_resume_checkpoint(str(work_dir), LOGGER, out_dirs)
    assert chosen == str(out_root / 'work' / 'iter_6.pth')
    assert 'outside' not in caplog.text


def test_older_non_zip_format_is_probed_without_mmap(tmp_path):
    # torch.save(_use_new_zipfile_serialization=False): mmap=True refuses
    # it ("mmap can only be used with ..."); it was called unloadable
    legacy = str(tmp_path / 'iter_8.pth')
    torch.save(dict(meta=dict(iter=8), state_dict=dict(w=torch.ones(2))),
               legacy, _use_new_zipfile_serialization=False)
    with pytest.raises(RuntimeError, match='mmap can only be used'):
        torch.load(legacy, mmap=True, weights_only=True)
    _ckpt(tmp_path, 4)  # older, zip format
    assert probe_checkpoint(legacy) is None
    assert choose_resume_checkpoint(str(tmp_path), LOGGER) == legacy


class _NotAllowed:
    """A global torch's safe unpickler does not allow."""


def test_non_zip_probe_keeps_safe_loading(tmp_path):
    path = str(tmp_path / 'iter_2.pth')
    torch.save(dict(meta=dict(iter=2), payload=_NotAllowed()), path,
               _use_new_zipfile_serialization=False)
    reason = probe_checkpoint(path)
    assert reason is not None and 'non-zip format' in reason
    assert '_NotAllowed' in reason  # refused by weights_only


def test_garbage_file_reason_is_not_the_mmap_message(tmp_path):
    path = tmp_path / 'iter_2.pth'
    path.write_bytes(b'not a checkpoint at all')
    reason = probe_checkpoint(str(path))
    assert reason is not None and 'mmap' not in reason
