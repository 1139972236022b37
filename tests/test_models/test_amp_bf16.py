# Copyright (c) OpenMMLab. All rights reserved.
"""bf16 autocast on the CPU: the DuPL model trains in every phase with the
CAM normalisation, PAR, GMM and the losses kept in fp32 (``fp32_island``).

The library wraps these functions with ``fp32_island``
(``test_library_functions_are_islands``); the ``islands`` fixture adds a
spy inside each one to record what the island's body saw.
"""
import argparse
import copy
import dataclasses
import math

import pytest
import torch
from dupl_test_utils import make_batch, set_iter, tiny_model_cfg
from mmseg.registry import MODELS

import mmseg_dupl  # noqa: F401
from mmseg_dupl.models.losses import discrepancy_loss as disc_module
from mmseg_dupl.models.pseudo_labelers import \
    dupl_pseudo_labeler as labeler_module
from mmseg_dupl.models.segmentors import dual_student_segmentor as seg_module
from mmseg_dupl.models.cam import multi_scale as cam_module
from mmseg_dupl.models.noise_filter import self_loss_noise as noise_module
from mmseg_dupl.models.refinement import par as par_module
from mmseg_dupl.models.utils.precision import (autocast_disabled,
                                               fp32_island, to_float32)

BF16 = torch.bfloat16

# (module, name): the functions that must run in fp32 under autocast.
ISLANDS = [
    (cam_module, 'merge_flipped_cam'),
    (cam_module, 'normalize_cam'),
    (par_module, 'par_refine'),
    (labeler_module, 'refine_cams_with_dynamic_thres'),
    (noise_module, 'gmm_noise_fit'),
    (noise_module, 'per_pixel_ce'),
    (seg_module, 'multilabel_cls_loss'),
    (seg_module, 'ptc_loss'),
    (seg_module, 'balanced_seg_loss'),
    (seg_module, 'consistency_loss'),
    (disc_module, 'discrepancy_loss'),
]


def test_library_functions_are_islands():
    for module, name in ISLANDS:
        fn = getattr(module, name)
        assert hasattr(fn, '__wrapped__'), f'{name} is not an fp32 island'
    from gmm_reference import fit_gmm_1d
    assert hasattr(fit_gmm_1d, '__wrapped__')


def test_fp32_island_casts_and_disables_autocast():
    seen = {}

    @fp32_island
    def body(x, pair, scale=None, labels=None, extra=None):
        seen['autocast'] = torch.is_autocast_enabled('cpu')
        seen['dtypes'] = (x.dtype, pair[0].dtype, pair[1].dtype,
                          scale.dtype, labels.dtype, extra['w'].dtype)
        return x @ x.T

    x = torch.randn(4, 4, dtype=BF16, requires_grad=True)
    with torch.autocast('cpu', dtype=BF16):
        out = body(
            x, (torch.ones(2, dtype=torch.float16), torch.ones(2)),
            scale=torch.ones(2, dtype=torch.float64),
            labels=torch.ones(2, dtype=torch.long),
            extra={'w': torch.ones(1, dtype=BF16)})
        assert torch.is_autocast_enabled('cpu')  # restored after the call
        plain = x @ x.T
    assert plain.dtype == BF16  # matmul does autocast here ...
    assert out.dtype == torch.float32  # ... but not in the island
    assert seen['autocast'] is False
    assert seen['dtypes'] == (torch.float32, torch.float32, torch.float32,
                              torch.float64, torch.long, torch.float32)
    out.sum().backward()  # the cast is differentiable
    assert x.grad.dtype == BF16 and torch.isfinite(x.grad.float()).all()
    assert body.__wrapped__.__name__ == 'body'


def test_fp32_island_is_transparent_outside_autocast():
    x = torch.randn(3, 5)
    island = fp32_island(cam_module.normalize_cam)
    cam = torch.rand(2, 3, 4, 4)
    assert torch.equal(island(cam), cam_module.normalize_cam(cam))
    assert to_float32(x) is x
    with autocast_disabled({'cpu'}):  # no autocast active: a no-op
        assert not torch.is_autocast_enabled('cpu')


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: on the shared, loaded 2-core CI host, two
    OpenMP threads make this test 20x slower (barrier waits)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def islands(monkeypatch):
    """Wrap every island (spied: records, inside the island, whether
    autocast was on and the floating dtypes the body saw and returned)."""
    records = []

    def spied(name, fn):

        def body(*args, **kwargs):
            out = fn(*args, **kwargs)
            floats = [
                t.dtype for t in list(args) + list(kwargs.values())
                if isinstance(t, torch.Tensor) and t.is_floating_point()
            ]
            outs = out if isinstance(out, tuple) else (out, )
            if dataclasses.is_dataclass(out):  # GMMNoiseFit: its tensors
                outs = tuple(vars(out).values())
            records.append(
                dict(
                    name=name,
                    autocast=torch.is_autocast_enabled('cpu'),
                    inputs=floats,
                    outputs=[
                        t.dtype for t in outs
                        if isinstance(t, torch.Tensor) and t.is_floating_point()
                    ]))
            return out

        return fp32_island(body)

    for module, name in ISLANDS:
        monkeypatch.setattr(module, name, spied(name, getattr(module, name)))
    return records


def _train_step(model, optimizer, n: int) -> dict:
    set_iter(model, n)
    data = model.data_preprocessor(make_batch(batch=2, size=32, seed=n),
                                   True)
    with torch.autocast('cpu', dtype=BF16):
        losses = model(**data, mode='loss')
        loss, _ = model.parse_losses(losses)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return losses


def test_bf16_training_all_phases_with_fp32_islands(islands):
    torch.manual_seed(0)
    model = MODELS.build(copy.deepcopy(tiny_model_cfg()))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    linear_dtypes = []
    model.student1.backbone.layers[0].attn.qkv.register_forward_hook(
        lambda m, i, o: linear_dtypes.append(o.dtype))
    before = copy.deepcopy(model.state_dict())
    # phase A (cls, PTC, disc), B (+ seg), C (+ GMM filter, consistency)
    for n, noise_filter, new_keys in (
        (0, False, {'s1.loss_cls', 's1.loss_ptc', 'loss_disc'}),
        (3, False, {'s1.loss_seg', 's2.loss_seg'}),
        (6, True, {'s1.loss_consistency', 's2.loss_consistency'}),
    ):
        islands.clear()
        losses = _train_step(model, optimizer, n)
        assert new_keys <= set(losses), (n, sorted(losses))
        for key, value in losses.items():
            assert math.isfinite(float(value.detach())), (n, key)
            if 'loss' in key:
                assert value.dtype == torch.float32, (n, key)
        called = {r['name'] for r in islands}
        assert {'normalize_cam', 'ptc_loss'} <= called
        if n > 0:
            assert {'refine_cams_with_dynamic_thres', 'par_refine',
                    'balanced_seg_loss'} <= called
        if noise_filter:
            assert {'gmm_noise_fit', 'consistency_loss'} <= called
        for record in islands:
            assert record['autocast'] is False, record
            assert all(d in (torch.float32, torch.float64)
                       for d in record['inputs'] + record['outputs']), record
    # autocast was really on: the backbone's linear layers ran in bf16
    assert linear_dtypes and set(linear_dtypes) == {BF16}
    for name, param in model.named_parameters():
        assert param.dtype == torch.float32, name
        assert torch.isfinite(param).all(), name
    moved = [
        k for k, v in model.state_dict().items()
        if v.is_floating_point() and not torch.equal(v, before[k])
    ]
    assert any('decode_head' in k for k in moved)
    assert any('backbone' in k for k in moved)


def _toy_cfg(data_root: str, work_dir: str, max_iters: int = 4):
    """The toy config, as tools/train.py would build it with the test
    suite's --cfg-options (phases at 1 and 2), without validation."""
    from conftest import TOY_CONFIG, toy_train_options
    from mmengine.config import Config, DictAction
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    options = toy_train_options(data_root, max_iters, cam=1, gmm=2) + [
        'train_dataloader.batch_size=2'
    ]
    cfg = Config.fromfile(TOY_CONFIG)
    cfg.merge_from_dict(
        parser.parse_args(['--cfg-options'] + options).cfg_options)
    cfg.work_dir = work_dir
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    return cfg


def test_amp_optim_wrapper_bf16_on_cpu_once_its_device_check_is_lifted(
        islands, toy_data_root, tmp_path, monkeypatch):
    """What ``tools/train.py --amp --cfg-options optim_wrapper.dtype=
    bfloat16`` does, on the CPU. mmengine 0.10.7's AmpOptimWrapper asserts
    a CUDA/NPU/MLU/MUSA device in ``__init__``; that assert is the only
    blocker: its autocast context follows the runner's device (bf16 on
    the CPU) and its GradScaler disables itself without CUDA (bf16 needs
    no loss scaling)."""
    from mmengine.optim.optimizer import amp_optimizer_wrapper
    from mmengine.runner import Runner
    monkeypatch.setattr(amp_optimizer_wrapper, 'is_cuda_available',
                        lambda: True)
    cfg = _toy_cfg(toy_data_root, str(tmp_path))
    cfg.optim_wrapper.update(
        type='AmpOptimWrapper', loss_scale='dynamic', dtype='bfloat16')
    runner = Runner.from_cfg(cfg)
    linear_dtypes = set()
    runner.model.student1.backbone.layers[0].attn.qkv.register_forward_hook(
        lambda m, i, o: linear_dtypes.add(o.dtype))
    runner.train()
    assert type(runner.optim_wrapper).__name__ == 'AmpOptimWrapper'
    assert not runner.optim_wrapper.loss_scaler.is_enabled()
    assert BF16 in linear_dtypes
    called = {r['name'] for r in islands}
    assert {'normalize_cam', 'par_refine', 'gmm_noise_fit',
            'consistency_loss'} <= called
    assert all(r['autocast'] is False for r in islands)
    scalars = runner.message_hub.log_scalars
    for key in ('loss', 's1.loss_seg', 's1.loss_consistency'):
        assert math.isfinite(scalars[f'train/{key}'].current()), key
    for name, param in runner.model.named_parameters():
        assert torch.isfinite(param).all(), name
