# Copyright (c) OpenMMLab. All rights reserved.
"""Which checkpoint --resume picks (CheckedRunner's choice)."""
import logging
import os

import pytest
import torch

from mmseg_dupl.engine.runners.resume_candidates import (
    checkpoints_newest_first, choose_resume_checkpoint)
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
