# Copyright (c) OpenMMLab. All rights reserved.
"""tools/pretrain_toy_backbone.py: a few iterations of the real script, its
cache, and its checkpoint through the toy config's ``Pretrained`` route."""
import importlib.util
import json
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import mmseg_dupl  # noqa: F401

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(REPO, 'tools', 'pretrain_toy_backbone.py')
TOY_CONFIG = osp.join(REPO, 'configs', 'dupl_vit-tiny_toy.py')
TINY = ['--num-train', '16', '--num-val', '8', '--img-size', '32',
        '--iters', '3', '--batch-size', '4']


def _tool():
    spec = importlib.util.spec_from_file_location('pretrain_toy', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def pretrained(tmp_path_factory):
    out = str(tmp_path_factory.mktemp('pretrain') / 'toy_vit_cls.pth')
    record = _tool().main(TINY + ['--out', out])
    return dict(out=out, record=record)


def test_writes_an_mmpretrain_style_checkpoint(pretrained):
    assert pretrained['record']['reused'] is False
    ckpt = torch.load(pretrained['out'], map_location='cpu')
    assert set(ckpt) == {'meta', 'state_dict'}
    prefixes = {k.split('.')[0] for k in ckpt['state_dict']}
    assert prefixes == {'backbone', 'head'}
    # the cache key records the settings it was trained with
    assert ckpt['meta']['settings']['iters'] == 3
    assert 'mAP' in ckpt['meta']['val']


def test_same_settings_reuse_the_cache_and_force_reproduces_it(pretrained):
    tool = _tool()
    before = torch.load(pretrained['out'])['state_dict']
    record = tool.main(TINY + ['--out', pretrained['out']])
    assert record['reused'] is True
    record = tool.main(TINY + ['--out', pretrained['out'], '--force'])
    assert record['reused'] is False
    after = torch.load(pretrained['out'])['state_dict']
    assert before.keys() == after.keys()
    for key in before:  # deterministic for a seed
        assert torch.equal(before[key], after[key]), key
    # other settings are another cache key: not reused
    with open(pretrained['out'] + '.json') as f:
        key = json.load(f)['key']
    assert not tool.cached(pretrained['out'], dict(key, settings=dict(
        key['settings'], seed=1)))


def test_toy_config_loads_every_backbone_key_through_init_cfg(pretrained):
    cfg = Config.fromfile(TOY_CONFIG)
    init_cfg = cfg.model.student.backbone.init_cfg
    assert init_cfg.type == 'Pretrained' and init_cfg.prefix == 'backbone.'
    init_cfg.checkpoint = pretrained['out']
    init_default_scope('mmseg')  # the pretraining Runner left mmpretrain's
    model = MODELS.build(cfg.model)
    model.init_weights()
    source = {
        k[len('backbone.'):]: v
        for k, v in torch.load(pretrained['out'])['state_dict'].items()
        if k.startswith('backbone.')
    }
    for student in model.students:
        target = student.backbone.state_dict()
        assert set(target) == set(source)
        for key, value in target.items():
            assert torch.equal(value, source[key]), key
        # the position table stays frozen after loading, as for DeiT
        assert not student.backbone.pos_embed.requires_grad


def test_check_rebuilds_byte_for_byte_and_fails_on_other_bytes(
        pretrained, tmp_path):
    tool = _tool()
    record = tool.main(TINY + ['--out', pretrained['out'], '--check'])
    assert record['identical'] is True
    other = tmp_path / 'other.pth'
    other.write_bytes(open(pretrained['out'], 'rb').read() + b'\0')
    with pytest.raises(SystemExit) as exc:
        tool.main(TINY + ['--out', str(other), '--check'])
    assert exc.value.code == 1


def test_committed_weights_are_what_the_default_settings_build():
    """``make demo`` reuses the committed checkpoint only if its sidecar
    records the default settings and the file's sha256 (the full rebuild,
    ``--check``, takes minutes: the closing notes record it)."""
    tool = _tool()
    out = tool.DEFAULT_OUT
    assert osp.getsize(out) < 5 * 2**20
    key = tool.cache_key(dict(tool.DEFAULT_SETTINGS), tool.DUPL_CONFIG)
    assert tool.cached(out, key)


def test_a_config_pins_its_settings_and_the_command_line_overrides(
        tmp_path):
    """The 64-d config's ``toy_pretrain`` keeps the 96 px mosaics its
    committed weights were built with (so ``make demo``'s cache check and
    the recipe table reuse them); a flag overrides a pinned value; a key
    that is not a setting is refused with the config's name."""
    import sys
    sys.path.insert(0, osp.join(REPO, 'benchmarks'))
    from bench_demo_seeds import NARROW_CONFIG
    tool = _tool()
    assert tool.DEFAULT_SETTINGS['img_size'] == 128
    assert tool.resolve_settings(TOY_CONFIG) == tool.DEFAULT_SETTINGS
    narrow = tool.resolve_settings(NARROW_CONFIG)
    assert narrow == dict(tool.DEFAULT_SETTINGS, img_size=96)
    assert tool.cached(
        osp.join(REPO, 'checkpoints', 'toy_vit-narrow_cls.pth'),
        tool.cache_key(narrow, NARROW_CONFIG))
    assert tool.resolve_settings(
        NARROW_CONFIG, dict(img_size=64, iters=None))['img_size'] == 64
    bad = tmp_path / 'bad.py'
    bad.write_text(f"_base_ = ['{TOY_CONFIG}']\n"
                   "toy_pretrain = dict(image_size=96)\n")
    with pytest.raises(KeyError, match=r'bad\.py: toy_pretrain\.image_size'):
        tool.resolve_settings(str(bad))
    bad.write_text(f"_base_ = ['{TOY_CONFIG}']\n"
                   "toy_pretrain = dict(img_size='96')\n")
    with pytest.raises(TypeError, match=r'toy_pretrain\.img_size must be int'):
        tool.resolve_settings(str(bad))


def test_narrow_config_pretrains_and_loads_every_key(tmp_path):
    """The recipe table's 64-d rows: the script pretrains the narrow
    backbone from its config, and its checkpoint loads into the narrow
    DuPL students and into the fully supervised reference given that
    backbone, every key matched."""
    import sys
    sys.path.insert(0, osp.join(REPO, 'benchmarks'))
    from bench_demo_seeds import NARROW_CONFIG, use_backbone_of
    out = str(tmp_path / 'narrow.pth')
    _tool().main(TINY + ['--out', out, '--dupl-config', NARROW_CONFIG])
    source = {
        k[len('backbone.'):]: v
        for k, v in torch.load(out)['state_dict'].items()
        if k.startswith('backbone.')
    }
    assert source['cls_token'].shape[-1] == 64
    init_default_scope('mmseg')
    dupl = Config.fromfile(NARROW_CONFIG)
    dupl.model.student.backbone.init_cfg.checkpoint = out
    reference = Config.fromfile(
        osp.join(REPO, 'configs', 'fully-supervised_vit-tiny_toy.py'))
    use_backbone_of(reference, NARROW_CONFIG)
    reference.model.backbone.init_cfg.checkpoint = out
    for cfg in (dupl, reference):
        model = MODELS.build(cfg.model)
        model.init_weights()
        backbones = [s.backbone for s in getattr(model, 'students',
                                                 [model])]
        for backbone in backbones:
            target = backbone.state_dict()
            assert set(target) == set(source)
            for key, value in target.items():
                assert torch.equal(value, source[key]), key
