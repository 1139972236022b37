# Copyright (c) OpenMMLab. All rights reserved.
from .dupl_pseudo_labeler import DuPLPseudoLabeler
from .pseudo_labels import PseudoLabels

__all__ = ['DuPLPseudoLabeler', 'PseudoLabels']
