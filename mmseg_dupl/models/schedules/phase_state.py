# Copyright (c) OpenMMLab. All rights reserved.
"""What DuPL does at one training iteration (the output of DuPLSchedule)."""
from dataclasses import dataclass, field
from typing import Dict, FrozenSet, Optional

from torch import Tensor


@dataclass(frozen=True)
class PhaseState:
    """The whole phase state of one iteration, computed by
    ``DuPLSchedule.state(n)``; the segmentor reads nothing else.

    Attributes:
        iteration (int): The 0-based iteration ``n`` this state is for.
        label_source (str, optional): The CAM that makes the segmentation
            pseudo labels: None before ``phases.cam`` (phase A), ``'cam'``
            or ``'cam_aux'`` (COCO's window up to ``phases.aux_cam_until``).
        class_thresholds (Tensor): float32 (C,), the high CAM threshold
            tau_c of every class (cosine descent, algorithm.md §7).
        low_threshold (float): tau_l, fixed.
        weights (dict[str, float]): Weight of every loss term (``cls``,
            ``ptc``, ``disc``, ``seg``, ``consistency``) at this iteration;
            0 means the term is off (its official ``<=`` bracket included).
        gmm_filter (bool): Whether the GMM noise filter runs (phase C).
        computed (frozenset[str]): The terms computed at this iteration,
            some of them weighted 0 as the reference weights them
            (algorithm.md §9, "zero-weighted terms"): their parameters
            get a zero gradient, not None, so AdamW's step counts match.
    """

    iteration: int
    label_source: Optional[str]
    class_thresholds: Tensor
    low_threshold: float
    weights: Dict[str, float]
    gmm_filter: bool
    computed: FrozenSet[str] = field(default_factory=frozenset)

    @property
    def consistency(self) -> bool:
        """Whether the consistency term is on (weight above 0)."""
        return self.weights['consistency'] > 0
