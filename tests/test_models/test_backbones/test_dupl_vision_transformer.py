# Copyright (c) OpenMMLab. All rights reserved.
"""The DuPL ViT against a hand-written timm-style reference forward, with
weights passed through the timm -> mmpretrain converter."""
import subprocess
import sys

import torch
import torch.nn.functional as F

import mmseg_dupl  # noqa: F401
from mmseg_dupl.models.backbones.dupl_vision_transformer import \
    DuPLVisionTransformer
from mmseg_dupl.models.backbones.timm_vit_converter import \
    timm_vit_to_mmpretrain

DIM, HEADS, LAYERS, PATCH = 16, 2, 4, 8


def timm_state(seed: int = 0, dim: int = DIM, layers: int = LAYERS,
               patch: int = PATCH) -> dict:
    """Random weights under timm's DeiT key names (with a head)."""
    g = torch.Generator().manual_seed(seed)

    def rnd(*shape):
        return torch.randn(*shape, generator=g) * 0.2

    grid = 224 // 16  # the 14x14 table of the 224 checkpoints
    state = {'cls_token': rnd(1, 1, dim),
             'pos_embed': rnd(1, grid * grid + 1, dim),
             'patch_embed.proj.weight': rnd(dim, 3, patch, patch),
             'patch_embed.proj.bias': rnd(dim),
             'norm.weight': 1 + rnd(dim), 'norm.bias': rnd(dim),
             'head.weight': rnd(1000, dim), 'head.bias': rnd(1000)}
    for i in range(layers):
        b = f'blocks.{i}.'
        state.update({
            b + 'norm1.weight': 1 + rnd(dim), b + 'norm1.bias': rnd(dim),
            b + 'attn.qkv.weight': rnd(3 * dim, dim),
            b + 'attn.qkv.bias': rnd(3 * dim),
            b + 'attn.proj.weight': rnd(dim, dim),
            b + 'attn.proj.bias': rnd(dim),
            b + 'norm2.weight': 1 + rnd(dim), b + 'norm2.bias': rnd(dim),
            b + 'mlp.fc1.weight': rnd(4 * dim, dim),
            b + 'mlp.fc1.bias': rnd(4 * dim),
            b + 'mlp.fc2.weight': rnd(dim, 4 * dim),
            b + 'mlp.fc2.bias': rnd(dim)
        })
    return state


def reference_forward(s: dict, x: torch.Tensor, aux_layer: int):
    """The reference (ToCo/DuPL timm ViT) forward: floor patching, bicubic
    pos-embed resize from 14x14, eps 1e-6, exact GELU; returns the raw
    aux block tokens and the final-norm last-block tokens as maps."""
    feat = F.conv2d(x, s['patch_embed.proj.weight'],
                    s['patch_embed.proj.bias'], stride=PATCH)
    b, _, h, w = feat.shape
    tokens = feat.flatten(2).transpose(1, 2)
    pos = s['pos_embed'][:, 1:].reshape(1, 14, 14, DIM).permute(0, 3, 1, 2)
    pos = F.interpolate(pos, (h, w), mode='bicubic', align_corners=False)
    tokens = tokens + pos.flatten(2).transpose(1, 2)
    cls = s['cls_token'] + s['pos_embed'][:, :1]
    t = torch.cat([cls.expand(b, -1, -1), tokens], 1)
    aux = None
    for i in range(LAYERS):
        p = f'blocks.{i}.'
        y = F.layer_norm(t, (DIM, ), s[p + 'norm1.weight'],
                         s[p + 'norm1.bias'], 1e-6)
        qkv = F.linear(y, s[p + 'attn.qkv.weight'], s[p + 'attn.qkv.bias'])
        q, k, v = qkv.reshape(b, -1, 3, HEADS, DIM // HEADS).permute(
            2, 0, 3, 1, 4)
        attn = (q @ k.transpose(-2, -1) * (DIM // HEADS)**-0.5).softmax(-1)
        y = (attn @ v).transpose(1, 2).reshape(b, -1, DIM)
        t = t + F.linear(y, s[p + 'attn.proj.weight'], s[p + 'attn.proj.bias'])
        y = F.layer_norm(t, (DIM, ), s[p + 'norm2.weight'],
                         s[p + 'norm2.bias'], 1e-6)
        y = F.linear(F.gelu(F.linear(y, s[p + 'mlp.fc1.weight'],
                                     s[p + 'mlp.fc1.bias'])),
                     s[p + 'mlp.fc2.weight'], s[p + 'mlp.fc2.bias'])
        t = t + y
        if i == aux_layer:
            aux = t
    t = F.layer_norm(t, (DIM, ), s['norm.weight'], s['norm.bias'], 1e-6)

    def as_map(z):
        return z[:, 1:].transpose(1, 2).reshape(b, DIM, h, w)

    return as_map(aux), as_map(t)


def test_matches_reference_forward_with_converted_weights():
    state = timm_state()
    converted = timm_vit_to_mmpretrain(state, prefix='')
    model = DuPLVisionTransformer(
        arch=dict(embed_dims=DIM, num_layers=LAYERS, num_heads=HEADS,
                  feedforward_channels=4 * DIM),
        img_size=14 * PATCH, patch_size=PATCH, out_indices=(1, 3),
        init_cfg=None)
    missing, unexpected = model.load_state_dict(converted, strict=True)
    assert not missing and not unexpected
    model.eval()
    # 60 is not a multiple of 8: the reference floors (7x7 tokens)
    for size in (56, 60, 88):
        x = torch.randn(2, 3, size, size)
        with torch.no_grad():
            aux, feat = model(x)
            ref_aux, ref_feat = reference_forward(state, x, aux_layer=1)
        assert feat.shape == (2, DIM, size // PATCH, size // PATCH)
        assert torch.allclose(aux, ref_aux, atol=1e-5)
        assert torch.allclose(feat, ref_feat, atol=1e-5)


def test_position_embedding_is_frozen():
    model = DuPLVisionTransformer(
        arch=dict(embed_dims=DIM, num_layers=2, num_heads=HEADS,
                  feedforward_channels=DIM),
        out_indices=(0, 1), init_cfg=None)
    model.init_weights()
    assert not model.pos_embed.requires_grad
    assert model.cls_token.requires_grad


def test_converter_rejects_unknown_keys():
    import pytest
    with pytest.raises(KeyError, match='blocks.0.weird'):
        timm_vit_to_mmpretrain({'blocks.0.weird.weight': torch.zeros(1)})


def test_convert_tool_writes_a_loadable_checkpoint(tmp_path):
    src, dst = tmp_path / 'timm.pth', tmp_path / 'out' / 'mm.pth'
    torch.save(timm_state(), src)
    subprocess.run([sys.executable, 'tools/convert_timm_vit.py', str(src),
                    str(dst)], check=True, capture_output=True)
    out = torch.load(dst)['state_dict']
    assert 'backbone.layers.3.ffn.layers.1.weight' in out
    assert not any(k.startswith('backbone.head') for k in out)


def test_resized_position_table_is_cached_while_unchanged():
    vit = DuPLVisionTransformer(
        arch=dict(embed_dims=DIM, num_layers=1, num_heads=HEADS,
                  feedforward_channels=32),
        img_size=32, patch_size=PATCH, out_indices=(0, ), init_cfg=None)
    x = torch.randn(1, 3, 48, 48)  # 6x6 tokens, table 4x4
    first = vit.resized_pos_embed((6, 6))
    assert vit.resized_pos_embed((6, 6)) is first  # cached
    uncached = vit._resize_pos_embed((6, 6))
    assert torch.equal(first, uncached)
    with torch.inference_mode():
        vit(x)  # a CAM pass reuses it, and training may use it after
    assert not vit.resized_pos_embed((6, 6)).is_inference()
    with torch.no_grad():
        vit.pos_embed.add_(1.)  # e.g. a checkpoint load: recomputed
    assert torch.equal(vit.resized_pos_embed((6, 6)),
                       vit._resize_pos_embed((6, 6)))
    assert not torch.equal(vit.resized_pos_embed((6, 6)), first)
    vit.pos_embed.requires_grad = True  # a trained table is never cached
    out = vit.resized_pos_embed((6, 6))
    assert out.requires_grad and out is not vit.resized_pos_embed((6, 6))
