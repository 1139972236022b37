# Copyright (c) OpenMMLab. All rights reserved.
"""Find the entries of a mapping that are not finite numbers."""
import math
from numbers import Number
from typing import Any, List, Mapping

import torch


def is_finite_value(value: Any) -> bool:
    """True unless ``value`` is a number or floating tensor with NaN/inf.

    Args:
        value (Any): A Python number, a tensor, or anything else (which
            counts as finite: there is nothing to check).

    Returns:
        bool: Whether every element is finite.
    """
    if isinstance(value, torch.Tensor):
        if not value.is_floating_point():
            return True
        return bool(torch.isfinite(value).all())
    if isinstance(value, Number) and not isinstance(value, bool):
        return math.isfinite(value)
    return True


def non_finite_names(values: Mapping[str, Any]) -> List[str]:
    """Names of the entries of ``values`` that hold NaN or +-inf.

    Args:
        values (Mapping[str, Any]): e.g. a state dict or logged losses.

    Returns:
        list[str]: The offending names, in the mapping's order.
    """
    return [name for name, v in values.items() if not is_finite_value(v)]
