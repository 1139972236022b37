# Copyright (c) OpenMMLab. All rights reserved.
"""Split files (``ann_file``): image names, one a line, and their repeats.

A name listed twice is two samples: in training that image is drawn twice
as often, in validation it counts twice in mIoU. Both
``VOCWSSSDataset`` (a warning) and ``tools/verify_dataset.py`` (a
problem) report such entries with :func:`duplicated_entries`.
"""
from collections import defaultdict
from typing import Dict, List, Sequence, Tuple

_MAX_LISTED = 10  # duplicated names shown in a message


def read_split_lines(path: str) -> List[Tuple[int, str]]:
    """Image names of a split file: the first token of each non-empty line.

    Args:
        path (str): The split file (must exist).

    Returns:
        list[tuple[int, str]]: ``(line number, name)`` in file order,
        repeats included; line numbers are 1-based.
    """
    with open(path) as f:
        return [(number, ln.split()[0]) for number, ln in enumerate(f, 1)
                if ln.strip()]


def duplicated_entries(
        lines: Sequence[Tuple[int, str]]) -> Dict[str, List[int]]:
    """Names listed more than once and the lines listing them.

    Args:
        lines (Sequence[tuple[int, str]]): From :func:`read_split_lines`.

    Returns:
        dict: name -> line numbers, in file order; empty when every name
        is listed once.
    """
    numbers = defaultdict(list)
    for number, name in lines:
        numbers[name].append(number)
    return {name: found for name, found in numbers.items()
            if len(found) > 1}


def describe_duplicates(duplicates: Dict[str, List[int]]) -> str:
    """``'a (lines 3, 9), b (lines 4, 5, 6), ... (N names)'``."""
    shown = [f'{name} (lines {", ".join(map(str, numbers))})'
             for name, numbers in list(duplicates.items())[:_MAX_LISTED]]
    more = ', ...' if len(duplicates) > _MAX_LISTED else ''
    return f'{", ".join(shown)}{more} ({len(duplicates)} names)'
