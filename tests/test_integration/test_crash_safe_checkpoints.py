# Copyright (c) OpenMMLab. All rights reserved.
"""Faults at each step of DurableCheckpointHook's save sequence, with
max_keep_ckpts=1: the run resumes with --resume (CheckedRunner) and ends
with the weights of an uninterrupted run (issue 11, item 1).

The runs are in-process (no interpreter start-up per run); a fault is an
exception raised between two steps of the sequence, which leaves the files
as a kill at that point would. test_resume_after_sigkill.py kills a real
process."""
import os

import pytest
import torch
from toy_runner import short_toy_options, toy_config

from mmseg_dupl.engine.hooks import durable_checkpoint_hook as hook_module
from mmseg_dupl.engine.runners import build_runner
from mmseg_dupl.engine.runners.resume_candidates import probe_checkpoint
from mmseg_dupl.utils import durable_io

MAX_ITERS = 4  # checkpoints at 2 and 4; faults hit the save of 4


class InjectedFault(RuntimeError):
    """Stands for a kill between two steps of the save sequence."""


def _config(work_dir: str, data_root: str, resume: bool = False):
    options = short_toy_options(data_root, MAX_ITERS) + [
        'default_hooks.checkpoint.max_keep_ckpts=1'
    ]
    return toy_config(work_dir, options, resume)


def _train(work_dir: str, data_root: str, resume: bool = False) -> dict:
    runner = build_runner(_config(work_dir, data_root, resume))
    model = runner.train()
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.fixture(scope='module')
def straight_weights(toy_data_root, tmp_path_factory) -> dict:
    return _train(str(tmp_path_factory.mktemp('straight')), toy_data_root)


def _on_second_call(fault):
    """Wrap ``fault(real, *args)`` to run on the 2nd call (the save of
    iteration 4) and pass the other calls through."""

    def wrap(real):
        calls = []

        def patched(*args):
            calls.append(args)
            if len(calls) == 2:
                fault(real, *args)
                raise InjectedFault(f'fault in {real.__name__}')
            return real(*args)

        return patched

    return wrap


def _truncate(path: str) -> None:
    size = os.path.getsize(path)
    with open(path, 'r+b') as f:
        f.truncate(size // 2)


# name -> (attribute of the hook module's durable_io / the hook, fault)
FAULTS = {
    # killed while torch.save was writing: a half-written .tmp file
    'during_write': ('commit_file', lambda real, tmp, dst: _truncate(tmp)),
    # written, not yet synced and renamed
    'before_rename': ('commit_file', lambda real, tmp, dst: None),
    # renamed into place, the disk then lost half of it (no pointer yet)
    'truncated_newest': ('commit_file',
                         lambda real, tmp, dst: (real(tmp, dst),
                                                 _truncate(dst))),
    # checkpoint durable, pointer still names the previous one
    'before_pointer': ('write_text_durably', lambda real, path, text: None),
    # mmengine's in-place pointer write, killed: a 0-byte last_checkpoint
    'empty_pointer': ('write_text_durably',
                      lambda real, path, text: open(path, 'w').close()),
    # pointer names a file that is gone
    'dangling_pointer': ('write_text_durably',
                         lambda real, path, text: real(
                             path, text.replace('iter_4', 'iter_44'))),
    # everything durable, the old checkpoint not yet deleted
    'before_delete': ('remove', lambda real, path: None),
}


def _patch(monkeypatch, target: str, fault) -> None:
    if target == 'remove':
        monkeypatch.setattr(hook_module.os, 'remove',
                            _on_first_remove(hook_module.os.remove, fault))
        return
    monkeypatch.setattr(durable_io, target,
                        _on_second_call(fault)(getattr(durable_io, target)))


def _on_first_remove(real, fault):
    # with max_keep_ckpts=1 the first deletion is that of iter_2.pth,
    # during the save of iteration 4
    def patched(path):
        if path.endswith('iter_2.pth'):
            fault(real, path)
            raise InjectedFault('fault before deleting iter_2.pth')
        return real(path)

    return patched


@pytest.mark.parametrize('fault', sorted(FAULTS))
def test_fault_then_resume_matches_uninterrupted_run(
        fault, straight_weights, toy_data_root, tmp_path, monkeypatch):
    work_dir = str(tmp_path / 'run')
    target, action = FAULTS[fault]
    with monkeypatch.context() as patch:
        _patch(patch, target, action)
        with pytest.raises(InjectedFault):
            _train(work_dir, toy_data_root)
    names = sorted(os.listdir(work_dir))
    loadable = [n for n in names
                if n.endswith('.pth') and probe_checkpoint(
                    os.path.join(work_dir, n)) is None]
    assert loadable, f'{fault}: no loadable checkpoint left in {names}'

    resumed = _train(work_dir, toy_data_root, resume=True)
    assert resumed.keys() == straight_weights.keys()
    for key, value in straight_weights.items():
        assert torch.allclose(resumed[key], value, atol=1e-6,
                              rtol=1e-5), (fault, key)
    assert os.path.isfile(os.path.join(work_dir, f'iter_{MAX_ITERS}.pth'))


def test_weights_moved(straight_weights, toy_data_root, tmp_path):
    # the comparison above is between trained weights, not two inits
    cfg = _config(str(tmp_path), toy_data_root)
    runner = build_runner(cfg)
    init = runner.model.state_dict()
    assert any(not torch.equal(init[k], v)
               for k, v in straight_weights.items())
