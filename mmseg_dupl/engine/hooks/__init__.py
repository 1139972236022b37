# Copyright (c) OpenMMLab. All rights reserved.
from . import removed_schedule_hooks  # noqa: F401
from .cam_visualization_hook import CAMVisualizationHook
from .durable_checkpoint_hook import DurableCheckpointHook
from .finite_loss_hook import FiniteLossHook
from .num_classes_check_hook import NumClassesCheckHook
from .preemption_hook import (PREEMPTED_EXIT_CODE, PreemptionHook,
                              TrainingPreempted)
from .progress_bar_hook import ProgressBarHook

__all__ = [
    'CAMVisualizationHook', 'DurableCheckpointHook', 'FiniteLossHook',
    'NumClassesCheckHook', 'PREEMPTED_EXIT_CODE', 'PreemptionHook',
    'ProgressBarHook', 'TrainingPreempted'
]
