# Copyright (c) OpenMMLab. All rights reserved.
from .cam_visualization_hook import CAMVisualizationHook
from .cosine_threshold_hook import CosineThresholdHook
from .durable_checkpoint_hook import DurableCheckpointHook
from .finite_loss_hook import FiniteLossHook
from .gmm_noise_filter_hook import GMMNoiseFilterHook
from .num_classes_check_hook import NumClassesCheckHook
from .preemption_hook import (PREEMPTED_EXIT_CODE, PreemptionHook,
                              TrainingPreempted)
from .progress_bar_hook import ProgressBarHook
from .pseudo_label_monitor_hook import PseudoLabelMonitorHook
from .set_iter_info_hook import SetIterInfoHook

__all__ = [
    'CAMVisualizationHook', 'CosineThresholdHook', 'DurableCheckpointHook',
    'FiniteLossHook', 'GMMNoiseFilterHook', 'NumClassesCheckHook',
    'PREEMPTED_EXIT_CODE', 'PreemptionHook', 'ProgressBarHook',
    'PseudoLabelMonitorHook', 'SetIterInfoHook', 'TrainingPreempted'
]
