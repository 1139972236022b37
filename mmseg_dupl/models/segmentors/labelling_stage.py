# Copyright (c) OpenMMLab. All rights reserved.
"""What ``DualStudentSegmentor.pseudo_labels`` returns."""
from dataclasses import dataclass
from typing import List, Optional, Tuple

from torch import Tensor

from ..pseudo_labelers.pseudo_labels import PseudoLabels
from ..schedules.phase_state import PhaseState


@dataclass
class LabellingStage:
    """One batch through DuPL's labelling stage (algorithm.md §3-§8): the
    students' outputs, their CAMs, tau_i and the pseudo labels.

    Attributes:
        state (PhaseState): The phase state the labels were made with.
        outputs (list[dict]): Per student, ``DuPLStudent.forward``'s dict
            (``cls``, ``cls_aux`` (B, C); ``seg`` (B, C+1, h, w); ``feat``,
            ``feat_aux`` (B, D, h, w)), with autograd when called so.
        cams (list[tuple[Tensor, Tensor]]): Per student, ``(cam, cam_aux)``
            in [0, 1], (B, C, H, W), no grad.
        image_thresholds (Tensor): tau_i, (B, ).
        cls_labels (Tensor): Multi-hot image labels, (B, C).
        img_box (Tensor, optional): Crop boxes ``[r0, r1, c0, c1]``, (B, 4).
        seg_logits (list[Tensor], optional): Per student, the segmentation
            logits at image size (B, C+1, H, W); None in phase A.
        pseudo (PseudoLabels, optional): Per student, the labels its CAM
            makes (``labels``), GMM-filtered in phase C (``filtered``,
            ``fits``); None in phase A (no seg labels yet).
    """

    state: PhaseState
    outputs: List[dict]
    cams: List[Tuple[Tensor, Tensor]]
    image_thresholds: Tensor
    cls_labels: Tensor
    img_box: Optional[Tensor]
    seg_logits: Optional[List[Tensor]]
    pseudo: Optional[PseudoLabels]
