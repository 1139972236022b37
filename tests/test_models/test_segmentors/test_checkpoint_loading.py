# Copyright (c) OpenMMLab. All rights reserved.
"""Loads that leave tensors missing or mismatched fail loudly; a single
student's checkpoint fills both students (issue 11, item 3)."""
import copy
from collections import OrderedDict

import pytest
import torch
from mmseg.registry import MODELS

import mmseg_dupl  # noqa: F401
from mmseg_dupl.utils.checked_load import (CheckpointMismatchError,
                                           check_load_report, load_into)

from dupl_test_utils import tiny_model_cfg


def build(num_students: int = 2, seed: int = 0, **student):
    cfg = tiny_model_cfg()
    cfg['num_students'] = num_students
    cfg['student'].update(student)
    torch.manual_seed(seed)
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def _students_equal(model, reference: dict) -> None:
    for name in ('student1', 'student2'):
        got = getattr(model, name).state_dict()
        for key, value in reference.items():
            assert torch.equal(got[key], value), (name, key)


def _student1(model) -> dict:
    return {k[len('student1.'):]: v.clone()
            for k, v in model.state_dict().items()
            if k.startswith('student1.')}


@pytest.mark.parametrize('layout', ['bare', 'student1'])
def test_single_student_checkpoint_fills_both(layout):
    baseline = build(num_students=1, seed=1)
    reference = _student1(baseline)
    if layout == 'bare':
        state = OrderedDict(reference)
    else:  # the num_students=1 baseline's own checkpoint
        state = OrderedDict(copy.deepcopy(baseline.state_dict()))
    target = build(seed=2)
    report = load_into(target, state)
    assert report.complete and not report.unexpected, report
    _students_equal(target, reference)
    assert report.loaded['student2'][0] == report.loaded['student2'][1] > 0


def test_dual_checkpoint_loads_as_is():
    source, target = build(seed=1), build(seed=2)
    report = load_into(target, OrderedDict(source.state_dict()))
    assert report.complete and not report.unexpected
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value), key


def test_missing_student_raises_naming_keys():
    source = build(seed=1)
    state = OrderedDict((k, v) for k, v in source.state_dict().items()
                        if not k.startswith('student2.decode_head'))
    state.update({k: v for k, v in source.state_dict().items()
                  if k.startswith('student2.backbone')})
    report = load_into(build(seed=2), state)
    with pytest.raises(CheckpointMismatchError,
                       match=r'ckpt\.pth.*\n.*missing: student2\.decode_head'):
        check_load_report(report, 'ckpt.pth', False, 'allow_partial_load')


def test_other_shapes_raise_unless_partial_allowed(caplog):
    other = build(seed=1, num_classes=4)  # another classifier shape
    target = build(seed=2)
    before = target.student1.classifier.weight.clone()
    report = load_into(target, OrderedDict(other.state_dict()))
    assert 'student1.classifier.weight' in report.mismatched
    assert torch.equal(target.student1.classifier.weight, before)
    with pytest.raises(CheckpointMismatchError) as err:
        check_load_report(report, 'other.pth', False, 'allow_partial_load')
    assert 'shape mismatch: ' in str(err.value)
    assert 'student1.classifier.weight' in str(err.value)
    check_load_report(report, 'other.pth', True, 'allow_partial_load')
