# Copyright (c) OpenMMLab. All rights reserved.
from .cosine_descent import cosine_descent
from .dupl_schedule import LOSS_TERMS, DuPLSchedule
from .iteration import current_iter, set_iteration
from .phase_state import PhaseState

__all__ = [
    'DuPLSchedule', 'PhaseState', 'LOSS_TERMS', 'cosine_descent',
    'current_iter', 'set_iteration'
]
