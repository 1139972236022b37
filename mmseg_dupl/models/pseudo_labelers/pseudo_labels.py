# Copyright (c) OpenMMLab. All rights reserved.
"""What ``DuPLPseudoLabeler`` returns: the labels and their intermediates."""
from dataclasses import dataclass
from typing import List, Optional

from torch import Tensor

from ..noise_filter.gmm_noise_fit import GMMNoiseFit


@dataclass
class PseudoLabels:
    """Segmentation pseudo labels of one batch, one entry per producer
    (student), with what the visualisation draws.

    Attributes:
        labels (list[Tensor]): PAR-refined two-threshold labels, long
            (B, H, W), 255 where uncertain or outside the crop box.
        noisy (list[Tensor], optional): Bool (B, H, W), the pixels the GMM
            filter flagged (always foreground labels); None when the filter
            did not run.
        filtered (list[Tensor]): ``labels`` with the noisy pixels set to
            the ignore index (the labels themselves without the filter).
        fits (list[GMMNoiseFit], optional): Per producer, what the GMM fit
            of each image did (fitted, accepted, mean gap); None when the
            filter did not run.
    """

    labels: List[Tensor]
    noisy: Optional[List[Tensor]]
    filtered: List[Tensor]
    fits: Optional[List[GMMNoiseFit]] = None
