# Copyright (c) OpenMMLab. All rights reserved.
"""The students' pretrained init refuses a checkpoint that leaves backbone
tensors missing or mismatched (issue 11, item 3)."""
import pytest
import torch
from mmseg.registry import MODELS

import mmseg_dupl  # noqa: F401
from mmseg_dupl.utils.checked_load import CheckpointMismatchError


def _vit(**kwargs):
    cfg = dict(
        type='DuPLVisionTransformer',
        arch=dict(embed_dims=16, num_layers=2, num_heads=2,
                  feedforward_channels=32),
        img_size=32,
        patch_size=8,
        out_indices=(0, 1))
    cfg.update(kwargs)
    return MODELS.build(cfg)


def _save(state: dict, path) -> str:
    # an mmpretrain classifier checkpoint: backbone.* and a head
    torch.save(dict(state_dict={**{f'backbone.{k}': v
                                   for k, v in state.items()},
                                'head.fc.weight': torch.zeros(3, 16)}),
               str(path))
    return str(path)


def _pretrained(path, **extra) -> dict:
    return dict(type='Pretrained', checkpoint=path, prefix='backbone.',
                **extra)


def test_complete_checkpoint_loads_every_tensor(tmp_path):
    torch.manual_seed(1)
    source = _vit(init_cfg=None)
    source.init_weights()
    path = _save(source.state_dict(), tmp_path / 'vit.pth')
    torch.manual_seed(2)
    target = _vit(init_cfg=_pretrained(path))
    target.init_weights()
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value), key
    assert not target.pos_embed.requires_grad  # still frozen


def test_missing_tensor_raises_naming_it(tmp_path):
    state = _vit(init_cfg=None).state_dict()
    del state['layers.1.ffn.layers.1.weight']
    path = _save(state, tmp_path / 'vit.pth')
    target = _vit(init_cfg=_pretrained(path))
    with pytest.raises(CheckpointMismatchError,
                       match=r'vit\.pth[\s\S]*'
                       r'missing: layers\.1\.ffn\.layers\.1\.weight'):
        target.init_weights()


def test_other_width_raises_unless_partial(tmp_path):
    other = _vit(init_cfg=None, arch=dict(
        embed_dims=24, num_layers=2, num_heads=2, feedforward_channels=32))
    path = _save(other.state_dict(), tmp_path / 'wide.pth')
    with pytest.raises(CheckpointMismatchError, match='shape mismatch'):
        _vit(init_cfg=_pretrained(path)).init_weights()
    _vit(init_cfg=_pretrained(path, allow_partial=True)).init_weights()
