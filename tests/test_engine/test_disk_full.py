# Copyright (c) OpenMMLab. All rights reserved.
"""A full disk during a save: the partial file is deleted and named, with
the free space; the previous checkpoint and the pointer stay good."""
import errno
import os
import re

import pytest
from mmengine.fileio import LocalBackend
from mmengine.logging import MessageHub
from mmengine.runner.checkpoint import save_checkpoint
from torch import nn

from mmseg_dupl.engine.hooks import DurableCheckpointHook
from mmseg_dupl.engine.runners.resume_candidates import probe_checkpoint
from mmseg_dupl.utils import durable_io


def _disk_full_after_half(real_put, failing_suffix: str):
    """``LocalBackend.put`` that, for a path ending in ``failing_suffix``,
    writes half the bytes and then fails as a full disk does."""

    def put(self, obj: bytes, filepath) -> None:
        if not str(filepath).endswith(failing_suffix):
            return real_put(self, obj, filepath)
        with open(filepath, 'wb') as f:
            f.write(obj[:len(obj) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    return put


class _Runner:
    """What ``DurableCheckpointHook`` uses of a Runner; the checkpoint is
    written by mmengine's own ``save_checkpoint`` (``torch.save`` into a
    buffer, then ``LocalBackend.put``), as ``Runner.save_checkpoint``
    does."""

    def __init__(self, work_dir: str) -> None:
        self.work_dir = work_dir
        self.model = nn.Linear(4, 4)
        self.message_hub = MessageHub.get_instance('test_disk_full')

    def save_checkpoint(self, out_dir: str, filename: str, *args,
                        meta: dict, **kwargs) -> None:
        save_checkpoint(dict(meta=meta, state_dict=self.model.state_dict()),
                        os.path.join(out_dir, filename))


def test_checkpoint_save_disk_full(tmp_path, monkeypatch):
    # the probe of issue 23: "OSError: No space left on device" without a
    # file name, and a 15.5 MB iter_8.pth.tmp left behind
    runner = _Runner(str(tmp_path))
    hook = DurableCheckpointHook(interval=1, by_epoch=False)
    hook.out_dir, hook.file_backend = str(tmp_path), LocalBackend()
    hook._save_checkpoint_with_step(runner, 4, meta=dict(iter=4))
    monkeypatch.setattr(
        LocalBackend, 'put',
        _disk_full_after_half(LocalBackend.put, f'iter_8.pth.{os.getpid()}.tmp'))
    with pytest.raises(OSError) as err:
        hook._save_checkpoint_with_step(runner, 8, meta=dict(iter=8))
    assert err.value.errno == errno.ENOSPC
    text = str(err.value)
    assert f'could not write {tmp_path / "iter_8.pth"}: No space left' \
        in text
    partial = tmp_path / f'iter_8.pth.{os.getpid()}.tmp'  # per process
    assert f'the partial {partial} was deleted' in text
    assert re.search(rf'; \d+\.\d MB free in {tmp_path}$', text)
    assert sorted(os.listdir(tmp_path)) == ['iter_4.pth', 'last_checkpoint']
    # the previous checkpoint and the pointer stay good
    assert probe_checkpoint(str(tmp_path / 'iter_4.pth')) is None
    assert (tmp_path / 'last_checkpoint').read_text() == str(
        tmp_path / 'iter_4.pth')


def test_pointer_write_disk_full(tmp_path, monkeypatch):
    pointer = tmp_path / 'last_checkpoint'
    durable_io.write_text_durably(str(pointer), '/old/iter_2.pth')

    def fsync_fails(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(durable_io.os, 'fsync', fsync_fails)
    with pytest.raises(OSError, match=r'No space left on device') as err:
        durable_io.write_text_durably(str(pointer), '/new/iter_4.pth')
    monkeypatch.undo()
    assert err.value.errno == errno.ENOSPC
    assert f'{pointer}.{os.getpid()}.tmp was deleted' in str(err.value)
    assert os.listdir(tmp_path) == ['last_checkpoint']
    assert pointer.read_text() == '/old/iter_2.pth'


def test_other_errors_leave_the_file_as_a_kill_would(tmp_path):
    tmp = tmp_path / 'x.tmp'
    with pytest.raises(KeyError):
        with durable_io.removed_on_failure(str(tmp), str(tmp_path / 'x')):
            tmp.write_bytes(b'partial')
            raise KeyError('not a write failure')
    assert tmp.read_bytes() == b'partial'


def test_failure_before_the_file_exists(tmp_path):
    with pytest.raises(PermissionError, match='x.tmp was absent'):
        with durable_io.removed_on_failure(str(tmp_path / 'x.tmp'),
                                           str(tmp_path / 'x')):
            raise PermissionError(errno.EACCES, 'Permission denied')
