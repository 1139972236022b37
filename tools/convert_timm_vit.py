# Copyright (c) OpenMMLab. All rights reserved.
"""Convert the reference's timm ViT weights for mmpretrain's ViT.

    python tools/convert_timm_vit.py deit_base_patch16_224-b5f2ef4d.pth \
        pretrain/deit-base_timm2mmpretrain.pth

Then train with ``--cfg-options
model.student.backbone.init_cfg.checkpoint=pretrain/deit-base_timm2mmpretrain.pth``.
"""
import argparse
import os
import os.path as osp
import sys

import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmseg_dupl.models.backbones.timm_vit_converter import \
    timm_vit_to_mmpretrain  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='timm checkpoint (.pth)')
    parser.add_argument('dst', help='output checkpoint for mmpretrain')
    args = parser.parse_args()
    if not osp.isfile(args.src):
        sys.exit(f'no such checkpoint: {args.src}')
    # timm checkpoints are plain tensors: safe loading works as is.
    state = torch.load(args.src, map_location='cpu')
    converted = timm_vit_to_mmpretrain(state)
    os.makedirs(osp.dirname(osp.abspath(args.dst)), exist_ok=True)
    torch.save(dict(state_dict=converted), args.dst)
    print(f'{len(converted)} tensors written to {args.dst}')


if __name__ == '__main__':
    main()
