# Copyright (c) OpenMMLab. All rights reserved.
import copy
from typing import List, Optional

from mmcv.transforms import BaseTransform, Compose

from mmseg.registry import TRANSFORMS


@TRANSFORMS.register_module()
class MultiBranch(BaseTransform):
    """Run several pipelines on copies of one sample (mmdet semantics).

    Each branch runs ``Compose(pipeline)(copy.deepcopy(results))``; the
    packed outputs are regrouped by key::

        {'inputs': {'weak': Tensor, 'strong': Tensor},
         'data_samples': {'weak': SegDataSample, 'strong': SegDataSample}}

    Branches named in ``branch_field`` without a pipeline get ``None``
    entries. If any branch pipeline returns ``None`` the whole sample is
    ``None``, so the dataset draws another one.

    Example (the DuPL training split)::

        dict(type='MultiBranch', branch_field=['weak', 'strong'],
             weak=[dict(type='PackWSSSInputs')],
             strong=[dict(type='StrongAug'), dict(type='PackWSSSInputs')])

    Args:
        branch_field (list[str]): All branch names, in output order.
        **branch_pipelines (list[dict]): One pipeline per branch name.
    """

    def __init__(self, branch_field: List[str], **branch_pipelines) -> None:
        unknown = sorted(set(branch_pipelines) - set(branch_field))
        if unknown:
            raise ValueError(
                f'MultiBranch: pipelines {unknown} are not in branch_field '
                f'{branch_field}')
        self.branch_field = list(branch_field)
        self.branch_pipelines = {
            branch: Compose(pipeline)
            for branch, pipeline in branch_pipelines.items()
        }

    def transform(self, results: dict) -> Optional[dict]:
        """Run every branch on its own deep copy of ``results``.

        Args:
            results (dict): Result dict shared by all branches.

        Returns:
            dict | None: ``{key: {branch: value}}`` for each key the branch
            pipelines return (usually ``inputs`` and ``data_samples``), or
            None if a branch returned None.
        """
        multi_results = {
            branch: {
                'inputs': None,
                'data_samples': None
            }
            for branch in self.branch_field
        }
        for branch, pipeline in self.branch_pipelines.items():
            branch_results = pipeline(copy.deepcopy(results))
            if branch_results is None:
                return None
            multi_results[branch] = branch_results

        format_results = {}
        for branch, branch_results in multi_results.items():
            for key, value in branch_results.items():
                format_results.setdefault(key, {})[branch] = value
        return format_results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(branch_field='
                f'{self.branch_field}, branch_pipelines='
                f'{list(self.branch_pipelines.keys())})')
