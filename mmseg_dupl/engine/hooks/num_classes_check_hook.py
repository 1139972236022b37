# Copyright (c) OpenMMLab. All rights reserved.
"""Check that the model's class counts match the dataset's classes."""
from typing import List

from mmengine.hooks import Hook
from mmseg.registry import HOOKS

from .unwrap import unwrap_model


def class_count_mismatches(model, num_dataset_classes: int,
                           classes_key: str) -> List[str]:
    """Describe each class count of a DuPL model that disagrees.

    The dataset's ``classes`` include the background: C + 1 entries for C
    foreground classes. ``model.num_classes`` and each student's
    ``num_classes`` (its classifiers) are C; each decode head's
    ``num_classes`` is C + 1.

    Args:
        model: ``DualStudentSegmentor`` (unwrapped); other models (without
            ``students``) give no mismatch.
        num_dataset_classes (int): ``len(metainfo['classes'])``.
        classes_key (str): Config key of the dataset classes, for messages.

    Returns:
        list[str]: One message per disagreeing config key (empty: all fit).
    """
    if not hasattr(model, 'students'):
        return []
    expected = num_dataset_classes - 1
    found = [('model.num_classes', model.num_classes, expected)]
    for student in model.students:
        found.append(('model.student.num_classes', student.num_classes,
                      expected))
        found.append(('model.student.decode_head.num_classes',
                      student.decode_head.num_classes, expected + 1))
    return [
        f'{key}={value} but {classes_key} has {num_dataset_classes} classes '
        f'(background included), so {key} must be {want}'
        for key, value, want in dict.fromkeys(found) if value != want
    ]


@HOOKS.register_module()
class NumClassesCheckHook(Hook):
    """Fail at the start of a run when class counts disagree.

    A ``model.num_classes`` that does not match the dataset's classes
    otherwise fails deep in the first iteration (a tensor-size error in
    ``_image_thresholds``) or, in evaluation, skews the metric. Checked in
    ``before_train``, ``before_val`` and ``before_test`` against the
    dataset of that loop, naming both config keys.
    """

    priority = 'VERY_HIGH'

    def _check(self, runner, split: str) -> None:
        dataset = getattr(runner, f'{split}_dataloader').dataset
        classes = dataset.metainfo.get('classes')
        if classes is None:
            return
        problems = class_count_mismatches(
            unwrap_model(runner), len(classes),
            f'{split}_dataloader.dataset.metainfo.classes')
        if problems:
            raise ValueError('class counts disagree:\n  ' +
                             '\n  '.join(problems))

    def before_train(self, runner) -> None:
        self._check(runner, 'train')

    def before_val(self, runner) -> None:
        self._check(runner, 'val')

    def before_test(self, runner) -> None:
        self._check(runner, 'test')
