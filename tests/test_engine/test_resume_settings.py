# Copyright (c) OpenMMLab. All rights reserved.
"""The pieces of "a resumed run follows its config" (issue 23, item 3)
without a training run: the settings put back over a loaded scheduler, the
config comparison, the refusal of another model's checkpoint."""
import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmseg.registry import PARAM_SCHEDULERS

import mmseg_dupl  # noqa: F401
from mmseg_dupl.engine.runners.resume_settings import (ConfigSettings,
                                                        ResumeMismatchError,
                                                        check_resume_fits,
                                                        config_differences)
from mmseg_dupl.engine.schedulers.poly_warmup_factor import \
    poly_warmup_factor


def _wrapper(lr: float = 1.) -> OptimWrapper:
    params = [torch.nn.Parameter(torch.zeros(1)) for _ in range(2)]
    optimizer = torch.optim.AdamW([dict(params=[params[0]]),
                                   dict(params=[params[1]], lr=lr * 10)],
                                  lr=lr)
    return OptimWrapper(optimizer)


def _poly(wrapper, warmup: int, max_iters: int):
    return PARAM_SCHEDULERS.build(
        dict(type='PolyWithWarmupLR', warmup_iters=warmup,
             max_iters=max_iters),
        default_args=dict(optimizer=wrapper))


def _checkpointed(steps: int, lr: float = 1.) -> tuple:
    """Optimizer and scheduler state after ``steps`` of the old run
    (warm-up 2, 4 iterations)."""
    wrapper = _wrapper(lr)
    poly = _poly(wrapper, 2, 4)
    for _ in range(steps):
        wrapper.optimizer.step()
        poly.step()
    return wrapper.state_dict(), poly.state_dict()


def test_config_settings_replace_the_checkpoints():
    optim_state, poly_state = _checkpointed(3)
    wrapper = _wrapper(lr=2.)  # the config: base lr x2, warm-up 5 of 6
    poly = _poly(wrapper, 5, 6)
    settings = ConfigSettings(wrapper, [poly])
    wrapper.load_state_dict(optim_state)
    poly.load_state_dict(poly_state)
    assert poly.max_iters == 4  # what mmengine's resume leaves
    changes = settings.restore(wrapper, [poly])
    text = '\n'.join(changes)
    assert '(PolyWithWarmupLR) max_iters: 4 -> 6' in text
    assert '(PolyWithWarmupLR) warmup_iters: 2 -> 5' in text
    assert 'optimizer initial_lr: 1 -> 2 (2 of 3 param groups)' in text
    assert 'optimizer initial_lr: 10 -> 20 (1 of 3 param groups)' in text
    assert 'lr of param group 0 at step 3: ' in text
    assert (poly.max_iters, poly.warmup_iters, poly.end) == (6, 5, 6)
    assert poly.last_step == 3  # the progress is the checkpoint's
    groups = wrapper.param_groups
    for group, base in zip(groups, (2., 20., 2.)):
        assert group['lr'] == pytest.approx(
            base * poly_warmup_factor(3, 5, 6, 1e-6, 0.9))


def test_same_settings_change_nothing():
    optim_state, poly_state = _checkpointed(3)
    wrapper = _wrapper()
    poly = _poly(wrapper, 2, 4)
    settings = ConfigSettings(wrapper, [poly])
    wrapper.load_state_dict(optim_state)
    poly.load_state_dict(poly_state)
    lrs = [g['lr'] for g in wrapper.param_groups]
    assert settings.restore(wrapper, [poly]) == []
    assert [g['lr'] for g in wrapper.param_groups] == lrs


def test_config_differences_name_each_value():
    old = Config(dict(train_cfg=dict(max_iters=300), work_dir='a',
                      model=dict(train_cfg=dict(phases=dict(end=300)))))
    new = Config(dict(train_cfg=dict(max_iters=600), work_dir='b',
                      model=dict(train_cfg=dict(phases=dict(end=600))),
                      extra=1))
    assert config_differences(old.pretty_text, new) == [
        'extra: <unset> -> 1',
        'model.train_cfg.phases.end: 300 -> 600',
        'train_cfg.max_iters: 300 -> 600',
    ]


def test_single_student_checkpoint_is_refused():
    checkpoint = dict(state_dict={'student1.w': 0, 'student1.b': 0})
    with pytest.raises(ResumeMismatchError,
                       match=r'single-student checkpoint .*\(no student2\)'
                       r'.*load_from=ckpt.pth'):
        check_resume_fits(checkpoint, ['student1.w', 'student2.w'], None,
                          'ckpt.pth')
    # the same parts pass
    check_resume_fits(checkpoint, ['module.student1.w'], None, 'ckpt.pth')


def test_other_param_groups_are_refused():
    wrapper = _wrapper()
    checkpoint = dict(
        state_dict={'a.w': 0},
        optimizer=dict(param_groups=[dict(lr=1.)] * 5))
    with pytest.raises(ResumeMismatchError, match='5 param groups, this '
                       'config builds 2'):
        check_resume_fits(checkpoint, ['a.w'], wrapper.optimizer, 'c.pth')
