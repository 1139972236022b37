# Copyright (c) OpenMMLab. All rights reserved.
"""LR multiplier of the official ``PolyWarmupAdamW`` (algorithm.md §9.1), a
pure
function of the step, so a resumed run gets exactly the uninterrupted lr."""


def poly_warmup_factor(step: int,
                       warmup_iters: int = 1500,
                       max_iters: int = 20000,
                       warmup_ratio: float = 1e-6,
                       power: float = 0.9) -> float:
    """LR multiplier of the official ``PolyWarmupAdamW`` at ``step``.

    algorithm.md §9.1, with ``step`` the optimizer's ``global_step`` before it
    is
    incremented (0 for the first update)::

        step < warmup_iters:  1 - (1 - step / warmup_iters) * (1 - ratio)
        otherwise:            (1 - step / max_iters) ** power

    The poly part uses the absolute step, not the step after warm-up, so the
    multiplier drops from ~0.99933 at step 1499 to ~0.93214 at step 1500.
    The official optimizer stops updating the lr once ``step >= max_iters``;
    this function mirrors that by returning the factor of ``max_iters - 1``.

    Args:
        step (int): Optimizer step index, 0-based, non-negative.
        warmup_iters (int): Linear warm-up length; 0 disables warm-up.
            Defaults to 1500.
        max_iters (int): Total number of iterations. Defaults to 20000.
        warmup_ratio (float): Multiplier at step 0 (the official
            ``warmup_lr=1e-6`` is a ratio). Defaults to 1e-6.
        power (float): Exponent of the poly decay. Defaults to 0.9.

    Returns:
        float: The multiplier applied to each group's initial lr.

    Example:
        >>> f'{6e-5 * poly_warmup_factor(7999):.3e}'
        '3.789e-05'
    """
    if step < 0:
        raise ValueError(f'poly_warmup_factor: step must be >= 0, got {step}')
    if max_iters < 1 or not 0 <= warmup_iters <= max_iters:
        raise ValueError('poly_warmup_factor: need 0 <= warmup_iters <= '
                         f'max_iters, got warmup_iters={warmup_iters}, '
                         f'max_iters={max_iters}')
    if step < warmup_iters:
        return 1.0 - (1.0 - step / warmup_iters) * (1.0 - warmup_ratio)
    step = min(step, max_iters - 1)
    return (1.0 - step / max_iters)**power
