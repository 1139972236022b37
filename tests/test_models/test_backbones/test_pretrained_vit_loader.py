# Copyright (c) OpenMMLab. All rights reserved.
"""The students' ``init_cfg=dict(type='Pretrained', prefix='backbone.')``
loads timm-format (the reference's DeiT/ViT files) and mmpretrain-format
checkpoints, and logs the format and ``N/M tensors loaded``."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmseg.registry import MODELS
from test_dupl_vision_transformer import (DIM, HEADS, LAYERS, PATCH,
                                          timm_state)

import mmseg_dupl  # noqa: F401
from mmseg_dupl.utils.checked_load import CheckpointMismatchError
from mmseg_dupl.models.backbones import pretrained_vit_loader
from mmseg_dupl.models.backbones.timm_vit_converter import \
    timm_vit_to_mmpretrain

REPO = osp.dirname(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
# the VOC config's student: DeiT-B/16 with 12 blocks of 12 tensors, the
# patch embedding (2), cls token, position table and final norm (2)
DEIT_B_TENSORS = 150


@pytest.fixture
def logged(monkeypatch) -> list:
    """Messages of the loader's ``print_log`` calls."""
    messages = []
    monkeypatch.setattr(pretrained_vit_loader, 'print_log',
                        lambda msg, **kw: messages.append(msg))
    return messages


def _small_backbone(checkpoint: str):
    return MODELS.build(
        dict(
            type='DuPLVisionTransformer',
            arch=dict(
                embed_dims=DIM,
                num_layers=LAYERS,
                num_heads=HEADS,
                feedforward_channels=4 * DIM),
            img_size=14 * PATCH,  # the checkpoints' 14x14 position table
            patch_size=PATCH,
            out_indices=(1, 3),
            init_cfg=dict(
                type='Pretrained', checkpoint=checkpoint,
                prefix='backbone.')))


def _assert_holds(model, expected: dict):
    state = model.state_dict()
    assert state.keys() == expected.keys()
    for key, value in expected.items():
        assert torch.equal(state[key], value), key


def test_timm_file_is_detected_converted_and_counted(tmp_path, logged):
    path = str(tmp_path / 'deit_timm.pth')
    timm = timm_state(seed=1)
    torch.save({'model': timm}, path)  # DeiT releases wrap it in 'model'
    model = _small_backbone(path)
    model.init_weights()
    _assert_holds(model, timm_vit_to_mmpretrain(timm, prefix=''))
    total = 4 + 12 * LAYERS + 2
    assert any('timm-format ViT keys, converted' in m for m in logged)
    assert any(f'backbone: {total}/{total} tensors loaded' in m
               and '(timm format)' in m for m in logged)
    assert not model.pos_embed.requires_grad  # still frozen after loading


def test_mmpretrain_file_keeps_working(tmp_path, logged):
    path = str(tmp_path / 'deit_mmpretrain.pth')
    backbone = timm_vit_to_mmpretrain(timm_state(seed=2), prefix='')
    state = {'backbone.' + k: v for k, v in backbone.items()}
    state['head.layers.head.weight'] = torch.zeros(1000, DIM)
    torch.save({'state_dict': state, 'meta': {}}, path)
    model = _small_backbone(path)
    model.init_weights()
    _assert_holds(model, backbone)
    total = len(backbone)
    assert any(f'backbone: {total}/{total} tensors loaded' in m
               and '(mmpretrain format)' in m for m in logged)
    assert not any('converted' in m for m in logged)


def test_partial_file_reports_the_count_and_missing_keys(tmp_path, logged):
    path = str(tmp_path / 'partial.pth')
    backbone = timm_vit_to_mmpretrain(timm_state(seed=3), prefix='')
    dropped = 'layers.0.ln1.weight'
    torch.save({'backbone.' + k: v
                for k, v in backbone.items() if k != dropped}, path)
    # a partial file is an error naming the key (issue 11) ...
    with pytest.raises(CheckpointMismatchError, match=dropped):
        _small_backbone(path).init_weights()
    # ... unless init_cfg.allow_partial=True: then counted and logged (the
    # missing keys in checked_load's warning)
    model = _small_backbone(path)
    model.init_cfg['allow_partial'] = True
    model.init_weights()
    total = len(backbone)
    assert any(f'backbone: {total - 1}/{total} tensors loaded' in m
               for m in logged)


def test_file_of_neither_format_names_file_and_prefix(tmp_path, logged):
    path = str(tmp_path / 'other.pth')
    torch.save({'encoder.weight': torch.zeros(2)}, path)
    model = _small_backbone(path)
    with pytest.raises(KeyError, match=r"other\.pth.*'backbone\.'"):
        model.init_weights()


def test_deit_b_timm_stand_in_loads_into_the_voc_student(tmp_path, logged):
    """The reference's deit_base_patch16_224-b5f2ef4d.pth layout (random
    weights) passed as the VOC config's checkpoint: 150/150 tensors."""
    path = str(tmp_path / 'deit_base_patch16_224-b5f2ef4d.pth')
    timm = timm_state(seed=4, dim=768, layers=12, patch=16)
    torch.save({'model': timm}, path)
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'dupl_vit-b_voc.py'))
    backbone_cfg = cfg.model.student.backbone
    backbone_cfg.init_cfg.checkpoint = path
    model = MODELS.build(backbone_cfg)
    model.init_weights()
    assert any(f'backbone: {DEIT_B_TENSORS}/{DEIT_B_TENSORS} tensors '
               'loaded' in m and '(timm format)' in m for m in logged)
    state = model.state_dict()
    assert torch.equal(state['layers.11.ffn.layers.1.weight'],
                       timm['blocks.11.mlp.fc2.weight'])
    assert torch.equal(state['ln1.bias'], timm['norm.bias'])
