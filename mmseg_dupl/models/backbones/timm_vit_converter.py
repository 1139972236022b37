# Copyright (c) OpenMMLab. All rights reserved.
"""Convert timm/DeiT ViT checkpoints (the reference's weights) to the key
names of mmpretrain's ``VisionTransformer``."""
import re
from typing import Dict

from torch import Tensor

# timm key pattern -> mmpretrain key template
_RULES = [
    (r'^blocks\.(\d+)\.norm1\.', r'layers.\1.ln1.'),
    (r'^blocks\.(\d+)\.norm2\.', r'layers.\1.ln2.'),
    (r'^blocks\.(\d+)\.attn\.qkv\.', r'layers.\1.attn.qkv.'),
    (r'^blocks\.(\d+)\.attn\.proj\.', r'layers.\1.attn.proj.'),
    (r'^blocks\.(\d+)\.mlp\.fc1\.', r'layers.\1.ffn.layers.0.0.'),
    (r'^blocks\.(\d+)\.mlp\.fc2\.', r'layers.\1.ffn.layers.1.'),
    (r'^patch_embed\.proj\.', 'patch_embed.projection.'),
    (r'^norm\.', 'ln1.'),
    (r'^(cls_token|pos_embed)$', r'\1'),
]
# Classifier heads of the ImageNet checkpoints: never used by DuPL.
_DROPPED = re.compile(r'^(head|head_dist|dist_token|fc_norm|pre_logits)')


def timm_vit_to_mmpretrain(state_dict: Dict[str, Tensor],
                           prefix: str = 'backbone.') -> Dict[str, Tensor]:
    """Rename a timm ViT/DeiT state dict for mmpretrain's ViT.

    Handles ``deit_base_patch16_224-b5f2ef4d.pth`` and
    ``jx_vit_base_p16_224-80ecf9dd.pth`` (the reference's ImageNet-1k and
    ImageNet-21k weights). Classifier heads are dropped.

    Args:
        state_dict (dict): timm keys (a ``'model'`` wrapper is unwrapped).
        prefix (str): Prefix of the output keys, so that
            ``init_cfg=dict(type='Pretrained', prefix='backbone.')`` loads
            the file. Defaults to 'backbone.'.

    Returns:
        dict: Renamed tensors.

    Raises:
        KeyError: For a key no rule knows, naming it.
    """
    if 'model' in state_dict and isinstance(state_dict['model'], dict):
        state_dict = state_dict['model']
    out = {}
    for key, value in state_dict.items():
        if _DROPPED.match(key):
            continue
        for pattern, template in _RULES:
            if re.match(pattern, key):
                out[prefix + re.sub(pattern, template, key)] = value
                break
        else:
            raise KeyError(f'unknown timm ViT key {key!r}')
    return out
