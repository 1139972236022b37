# Copyright (c) OpenMMLab. All rights reserved.
from typing import Dict, Optional, Sequence, Tuple

import torch.nn as nn
from mmengine.model import BaseDataPreprocessor

from mmseg.registry import MODELS
from mmseg.utils import ConfigType


@MODELS.register_module()
class MultiBranchSegDataPreProcessor(BaseDataPreprocessor):
    """Run a ``SegDataPreProcessor`` on every branch of a multi-branch batch.

    mmdet's ``MultiBranchDataPreprocessor`` for segmentation. In training
    the collated batch of :class:`MultiBranch` samples::

        {'inputs': {'weak': [Tensor, ...], 'strong': [Tensor, ...]},
         'data_samples': {'weak': [SegDataSample, ...], 'strong': [...]}}

    (or a list of per-sample ``{'inputs': {branch: ...}, ...}`` dicts) is
    regrouped by branch, ``None`` entries are dropped, the wrapped
    preprocessor normalises and stacks each branch, and the result is::

        {'inputs': {'weak': (B, 3, 448, 448), 'strong': (B, 3, 336, 336)},
         'data_samples': {'weak': [...], 'strong': [...]}}

    Branch sizes: ``stack_batch`` needs one of ``size`` / ``size_divisor``
    and a fixed ``size`` would pad the smaller strong view up to the weak
    one. So in training the wrapped preprocessor's ``size`` is replaced per
    branch by ``branch_sizes[branch]`` when given, and otherwise by
    ``size_divisor=1``: each branch is stacked at its own largest image size
    (no padding when, as in the WSSS pipelines, all images of a branch have
    one size). At val/test time it is a plain pass-through, so the wrapped
    preprocessor's ``size`` / ``test_cfg`` apply unchanged. A plain
    (single-branch) batch with ``training=True``, as mmseg's
    ``benchmark.py`` sends test batches, is normalised and stacked as one
    branch and returned in the wrapped preprocessor's format. ``mean``,
    ``std`` and ``bgr_to_rgb`` come from the wrapped config.

    Args:
        data_preprocessor (dict): Config of the wrapped preprocessor,
            usually ``dict(type='SegDataPreProcessor', ...)``.
        branch_sizes (dict[str, tuple[int, int]], optional): Fixed padding
            size ``(h, w)`` per branch in training. Defaults to None.
    """

    def __init__(self,
                 data_preprocessor: ConfigType,
                 branch_sizes: Optional[Dict[str, Sequence[int]]] = None):
        super().__init__()
        self.data_preprocessor = MODELS.build(data_preprocessor)
        self.branch_sizes = {
            branch: tuple(size)
            for branch, size in (branch_sizes or {}).items()
        }

    @staticmethod
    def _group_by_branch(data: dict) -> Dict[str, dict]:
        """``{key: {branch: list}}`` -> ``{branch: {key: list}}``."""
        if isinstance(data['inputs'], (list, tuple)):
            # per-sample dicts that were not collated by key
            data = {
                key: {
                    branch: [sample[branch] for sample in data[key]]
                    for branch in data[key][0]
                }
                for key in data
            }
        grouped: Dict[str, dict] = {}
        for key, per_branch in data.items():
            if not isinstance(per_branch, dict):
                raise TypeError(
                    'MultiBranchSegDataPreProcessor: in training data['
                    f'{key!r}] must map branch names to lists, got '
                    f'{type(per_branch).__name__}; is the train pipeline '
                    'wrapped in MultiBranch?')
            for branch, values in per_branch.items():
                values = [v for v in values if v is not None]
                if values:
                    grouped.setdefault(branch, {})[key] = values
        return grouped

    @staticmethod
    def _is_multi_branch(data: dict) -> bool:
        """Whether ``data`` is a :class:`MultiBranch` batch: inputs keyed
        by branch, or per-sample dicts of branches."""
        inputs = data.get('inputs')
        if isinstance(inputs, dict):
            return True
        return (isinstance(inputs, (list, tuple)) and len(inputs) > 0
                and isinstance(inputs[0], dict))

    def _branch_padding(self, branch: Optional[str]) -> Tuple:
        """``(size, size_divisor)`` used to stack ``branch`` (None: a
        plain batch, which keeps the wrapped preprocessor's own rule if it
        has one)."""
        if branch in self.branch_sizes:
            return self.branch_sizes[branch], None
        inner = self.data_preprocessor
        if branch is None and (getattr(inner, 'size', None)
                               or getattr(inner, 'size_divisor', None)):
            return inner.size, inner.size_divisor
        return None, 1

    def _forward_branch(self, branch: Optional[str], data: dict) -> dict:
        """Run the wrapped preprocessor with the branch's padding rule."""
        inner = self.data_preprocessor
        if not hasattr(inner, 'size'):
            return inner(data, True)
        saved = inner.size, inner.size_divisor
        inner.size, inner.size_divisor = self._branch_padding(branch)
        try:
            return inner(data, True)
        finally:
            inner.size, inner.size_divisor = saved

    def forward(self, data: dict, training: bool = False) -> dict:
        """Preprocess a multi-branch batch (training) or a plain one (eval).

        Args:
            data (dict): Data from the dataloader.
            training (bool): Whether in training mode. Defaults to False.

        Returns:
            dict: ``{'inputs': {branch: Tensor}, 'data_samples': {branch:
            list}}`` in training, the wrapped preprocessor's output
            otherwise.
        """
        if not training:
            return self.data_preprocessor(data, training)
        if not self._is_multi_branch(data):
            # A plain batch with training=True: what mmseg's
            # analysis_tools/benchmark.py does with test batches. Stacked
            # as one branch, returned as the wrapped preprocessor returns.
            return self._forward_branch(None, data)
        outputs: Dict[str, dict] = {}
        for branch, branch_data in self._group_by_branch(data).items():
            result = self._forward_branch(branch, branch_data)
            for key, value in result.items():
                outputs.setdefault(key, {})[branch] = value
        return outputs

    @property
    def device(self):
        """The wrapped preprocessor's device."""
        return self.data_preprocessor.device

    def to(self, *args, **kwargs) -> nn.Module:
        """Move both this wrapper and the wrapped preprocessor."""
        self.data_preprocessor.to(*args, **kwargs)
        return super().to(*args, **kwargs)

    def cuda(self, *args, **kwargs) -> nn.Module:
        """Move both this wrapper and the wrapped preprocessor to CUDA."""
        self.data_preprocessor.cuda(*args, **kwargs)
        return super().cuda(*args, **kwargs)

    def cpu(self, *args, **kwargs) -> nn.Module:
        """Move both this wrapper and the wrapped preprocessor to the CPU."""
        self.data_preprocessor.cpu(*args, **kwargs)
        return super().cpu(*args, **kwargs)
