# Copyright (c) OpenMMLab. All rights reserved.
from .cosine_descent import cosine_descent
from .dupl_schedule import LOSS_TERMS, PHASE_KEYS, DuPLSchedule
from .dupl_train_state import DuPLTrainState, trained_iteration
from .phase_state import PhaseState

__all__ = [
    'DuPLSchedule', 'DuPLTrainState', 'PhaseState', 'LOSS_TERMS',
    'PHASE_KEYS', 'cosine_descent', 'trained_iteration'
]
