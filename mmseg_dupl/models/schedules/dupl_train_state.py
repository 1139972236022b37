# Copyright (c) OpenMMLab. All rights reserved.
"""The run-time state a DuPL model trains with, written from outside.

The model holds it; who writes what (algorithm.md §9, "run-time path")::

    SetIterInfoHook      -> iteration         (label source, term weights)
    CosineThresholdHook  -> class_thresholds  (tau_c)
    GMMNoiseFilterHook   -> gmm_filter, consistency

Outside a runner ``DualStudentSegmentor.follow_schedule(n)`` writes all
four from the model's ``DuPLSchedule``. A field still None when ``loss()``
runs is an error that names its writer: the model never guesses an
iteration.
"""
from dataclasses import dataclass, fields
from typing import List, Optional

from torch import Tensor

#: Who sets each field inside a runner (for the error of a missing one).
WRITERS = dict(
    iteration='SetIterInfoHook',
    class_thresholds='CosineThresholdHook',
    gmm_filter='GMMNoiseFilterHook',
    consistency='GMMNoiseFilterHook')

#: The fields only a schedule with a phase C (the GMM filter) needs.
PHASE_C_SWITCHES = ('gmm_filter', 'consistency')


@dataclass
class DuPLTrainState:
    """What the hooks last wrote into the model.

    Attributes:
        iteration (int, optional): ``runner.iter``, 0-based; decides the
            label source and which loss terms are weighted.
        class_thresholds (Tensor, optional): tau_c, float32 (C,).
        gmm_filter (bool, optional): Whether the GMM noise filter runs.
        consistency (bool, optional): Whether the consistency term runs.
    """

    iteration: Optional[int] = None
    class_thresholds: Optional[Tensor] = None
    gmm_filter: Optional[bool] = None
    consistency: Optional[bool] = None

    def unset(self, needs_phase_c: bool) -> List[str]:
        """Fields still None; the phase-C switches only when the schedule
        has a phase C."""
        names = [f.name for f in fields(self)
                 if needs_phase_c or f.name not in PHASE_C_SWITCHES]
        return [name for name in names if getattr(self, name) is None]


def trained_iteration(checkpoint: dict) -> Optional[int]:
    """The last iteration a training checkpoint trained, ``meta.iter - 1``
    (``iter_N.pth`` is saved after N iterations), or None without it.

    Tools that label with a loaded checkpoint (exporter, CAM drawings) pass
    it to ``follow_schedule`` so that an intermediate checkpoint gets the
    thresholds it was trained with.

    Args:
        checkpoint (dict): What ``mmengine.runner.load_checkpoint`` returns.
    """
    trained = (checkpoint.get('meta') or {}).get('iter')
    return int(trained) - 1 if trained else None
