# Copyright (c) OpenMMLab. All rights reserved.
"""Map a single student's checkpoint keys onto every student."""
from typing import MutableMapping, Sequence

#: Top-level modules of one ``DuPLStudent``.
STUDENT_PARTS = ('backbone', 'classifier', 'aux_classifier', 'decode_head')


def share_single_student(state_dict: MutableMapping, prefix: str,
                         students: Sequence[str]) -> str:
    """Give every student the tensors of a single-student checkpoint.

    Two single-student layouts are recognised, in place:

    - bare keys (``backbone.*``, ``classifier.*``, ...: a ``DuPLStudent``
      saved on its own): moved to ``<student>.*`` for every student;
    - ``student1.*`` only (the ``num_students=1`` baseline): copied to
      the other students' names, which the checkpoint lacks.

    A checkpoint with keys of several students is left as is.

    Args:
        state_dict (MutableMapping): Keys as the segmentor sees them.
        prefix (str): The segmentor's prefix in ``state_dict``.
        students (Sequence[str]): Student module names, e.g.
            ``('student1', 'student2')``.

    Returns:
        str: ``'bare'``, ``'student1'`` (the layouts above, shared) or
        ``''`` (nothing changed).
    """
    keys = [k for k in state_dict if k.startswith(prefix)]
    bare = [k for k in keys if k[len(prefix):].split('.')[0] in STUDENT_PARTS]
    if bare:
        for key in bare:
            value = state_dict.pop(key)
            for name in students:
                state_dict.setdefault(f'{prefix}{name}.{key[len(prefix):]}',
                                      value)
        return 'bare'
    first = f'{prefix}{students[0]}.'
    others = [f'{prefix}{name}.' for name in students[1:]]
    if not others or any(k.startswith(tuple(others)) for k in keys):
        return ''
    own = [k for k in keys if k.startswith(first)]
    for key in own:
        for other in others:
            state_dict[other + key[len(first):]] = state_dict[key]
    return students[0] if own else ''
