# Copyright (c) OpenMMLab. All rights reserved.
from .multi_branch_seg_data_preprocessor import MultiBranchSegDataPreProcessor

__all__ = ['MultiBranchSegDataPreProcessor']
