# Copyright (c) OpenMMLab. All rights reserved.
"""FLOPs and parameters of a config's inference network, as mmseg's
``tools/analysis_tools/get_flops.py`` reports them.

mmseg 1.2.2's script reads ``cfg.model.decode_head``, which a DuPL config
does not have (each student holds its own head), so it stops with
``'ConfigDict' object has no attribute 'decode_head'``; and it passes both
``input_shape`` and ``inputs`` to mmengine 0.10.7's
``get_model_complexity_info``, which refuses that for any config. This tool
counts what inference runs: the segmentation logits of the student(s) that
``model.test_cfg.student`` names (``s1``, ``s2``, or ``ensemble``: both),
with mmengine's counter as mmseg's script uses it (a multiply-add counts
one), plus the attention matrix products: mmengine 0.10.7 has no rule for
``aten::scaled_dot_product_attention``, the attention of mmpretrain's ViT
on torch 2, and would count it as 0 (other ops it skips, such as
normalisations and activations, are logged and left out, as in mmseg).
Any other mmseg segmentor is counted through its ``mode='tensor'``
forward.

    python tools/get_flops.py configs/dupl_vit-b_voc.py --shape 448
"""
import argparse
import os.path as osp
import sys
from math import prod
from typing import Any, List, Sequence

import torch
from mmengine.analysis import FlopAnalyzer, parameter_count
from mmengine.analysis.jit_handles import get_shape
from mmengine.analysis.print_helper import _format_size
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope
from torch import Tensor, nn

# Run from a checkout without installing the package.
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))


def sdpa_flop_jit(inputs: List[Any], outputs: List[Any]) -> int:
    """Multiply-adds of ``softmax(q k^T) v``: ``q`` ``(..., N, d)``,
    ``k`` ``(..., M, d)``, ``v`` ``(..., M, d_v)`` -> ``N M (d + d_v)``
    per batch and head (the softmax is not counted, as elsewhere)."""
    query, key, value = (get_shape(x) for x in inputs[:3])
    *batch, tokens, dims = query
    return prod(batch) * tokens * key[-2] * (dims + value[-1])


class ChosenStudents(nn.Module):
    """The segmentation path of ``test_cfg.student``: the mean of the
    chosen students' logits (what ``encode_decode`` computes, without the
    final bilinear resize, which mmseg's counter does not count either).

    Args:
        students (Sequence[nn.Module]): The students predicting.
    """

    def __init__(self, students: Sequence[nn.Module]) -> None:
        super().__init__()
        self.students = nn.ModuleList(students)

    def forward(self, inputs: Tensor) -> Tensor:
        """``(B, 3, H, W)`` -> ``(B, K, h, w)`` decoder logits."""
        return torch.stack([s.seg_logits(inputs)
                            for s in self.students]).mean(0)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='FLOPs and parameters of a segmentor at inference')
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        '--shape',
        type=int,
        nargs='+',
        default=[448],
        help='input size: H (square) or H W. Defaults to 448, the VOC '
        'and COCO configs\' test size')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings (key=value), e.g. '
        'model.test_cfg.student=ensemble')
    return parser.parse_args(argv)


def predictor(model: nn.Module) -> nn.Module:
    """The module whose forward is the inference network."""
    if hasattr(model, '_predict_students'):
        return ChosenStudents(model._predict_students())
    return model


def complexity(cfg: Config, shape: Sequence[int]) -> dict:
    """``dict(flops=..., params=..., shape=(3, H, W))`` (raw counts) of
    ``cfg.model`` on one ``shape`` image."""
    from mmseg.registry import MODELS
    if len(shape) == 1:
        shape = (shape[0], shape[0])
    if len(shape) != 2:
        raise ValueError(f'--shape takes H or H W, got {list(shape)}')
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    model = MODELS.build(cfg.model).eval()
    net = predictor(model)
    input_shape = (3, ) + tuple(shape)
    with torch.no_grad():
        analyzer = FlopAnalyzer(net, (torch.rand(1, *input_shape), ))
        analyzer.set_op_handle('aten::scaled_dot_product_attention',
                               sdpa_flop_jit)
        flops = analyzer.total()
    return dict(
        flops=flops, params=parameter_count(net)[''], shape=input_shape)


def main(argv=None) -> dict:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    # Build without downloading or loading pretrained weights.
    result = complexity(cfg, args.shape)
    student = (cfg.model.get('test_cfg') or {}).get('student')
    line = '=' * 30
    print(f'{line}\nInput shape: {result["shape"]}\n'
          + (f'Student: {student}\n' if student else '') +
          f'Flops: {_format_size(result["flops"])}\n'
          f'Params: {_format_size(result["params"])}\n{line}')
    return result


if __name__ == '__main__':
    main()
