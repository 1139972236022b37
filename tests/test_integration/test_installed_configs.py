# Copyright (c) OpenMMLab. All rights reserved.
"""The wheel ships configs, tools and the toy weights in mmseg_dupl/.mim
(setup.py, as mmseg's): installed into a scratch folder that reuses the
project's packages, a config loads by its ``mmseg_dupl::`` name from a
directory outside the repository, mmengine resolves ``mmseg_dupl::`` in
``_base_`` and ``mmengine.hub.get_config``, and the installed
``tools/train.py`` trains the installed toy config for 2 iterations."""
import glob
import os
import os.path as osp
import re
import shutil
import subprocess
import sys

import pytest

from mmseg_dupl.utils import get_config_path, mim_root

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY_NAME = 'mmseg_dupl::dupl_vit-tiny_toy.py'

CHECK = r'''
import os.path as osp, sys
import mmengine.hub
from mmengine.config import Config
import mmseg_dupl
target = sys.argv[1]
assert mmseg_dupl.__file__.startswith(target), mmseg_dupl.__file__
path = mmseg_dupl.get_config_path({name!r})
assert path.startswith(osp.join(target, 'mmseg_dupl', '.mim')), path
cfg = Config.fromfile(path)
ckpt = cfg.model.student.backbone.init_cfg.checkpoint
assert osp.isfile(ckpt) and '.mim' in ckpt, ckpt
# data_root is resolved from the config file, not the working directory
assert osp.isabs(cfg.train_dataloader.dataset.data_root)
user = Config.fromstring(
    "_base_ = ['mmseg_dupl::_base_/datasets/toy_voc_wsss_128x128.py']",
    '.py')
assert user.crop_size == 128
hub = mmengine.hub.get_config(
    'mmseg_dupl::stage2/segformer_mit-b0_1xb4-20k_pseudo-toy-128x128.py')
assert hub.model.decode_head.num_classes == 6
print('CONFIG', path)
'''


def _run(cmd, cwd, env, timeout=300) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    return out


@pytest.fixture(scope='module')
def installed(tmp_path_factory) -> str:
    """The wheel of a copy of the repository (an in-tree build writes
    mmseg_dupl/.mim, build/ and *.egg-info), installed with --target."""
    root = tmp_path_factory.mktemp('install')
    src = root / 'src'
    shutil.copytree(
        REPO, src, symlinks=True,
        ignore=shutil.ignore_patterns('.git', '.venv', 'work_dirs', 'data',
                                      'build', 'dist', '*.egg-info', '.mim',
                                      '__pycache__', '.pytest_cache',
                                      '*_work'))
    env = dict(os.environ)
    _run([sys.executable, '-m', 'pip', 'wheel', '--no-deps',
          '--no-build-isolation', '--no-cache-dir', '-q', '-w',
          str(root / 'wheel'), str(src)], str(root), env)
    wheels = glob.glob(str(root / 'wheel' / 'mmseg_dupl-*.whl'))
    assert len(wheels) == 1, wheels
    target = root / 'site'
    _run([sys.executable, '-m', 'pip', 'install', '--no-deps', '-q',
          '--target', str(target), wheels[0]], str(root), env)
    return str(target)


def test_wheel_holds_configs_tools_and_weights(installed):
    mim = osp.join(installed, 'mmseg_dupl', '.mim')
    for rel in ('configs/dupl_vit-b_voc.py', 'configs/stage2',
                'configs/_base_/datasets/toy_voc_wsss_128x128.py',
                'tools/train.py', 'tools/test.py', 'tools/dist_train.sh',
                'tools/get_flops.py', 'checkpoints/toy_vit_cls.pth',
                'model-index.yml', 'metafile.yaml'):
        assert osp.exists(osp.join(mim, rel)), rel
    assert not glob.glob(osp.join(mim, 'checkpoints', '*_work'))


def test_installed_config_trains_from_outside_the_repo(
        installed, toy_data_root, tmp_path):
    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    env = dict(os.environ, PYTHONPATH=installed)
    check = elsewhere / 'check.py'
    check.write_text(CHECK.format(name=TOY_NAME))
    out = _run([sys.executable, str(check), installed], str(elsewhere), env)
    config = out.split('CONFIG ')[-1].split()[0]
    train = osp.join(installed, 'mmseg_dupl', '.mim', 'tools', 'train.py')
    options = [
        f'{loader}.dataset.data_root={toy_data_root}'
        for loader in ('train_dataloader', 'val_dataloader',
                       'test_dataloader')
    ] + [
        'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        'val_dataloader.num_workers=0',
        'val_dataloader.persistent_workers=False',
        # 2 iterations of the CAM phase (the schedule needs >= 4 to be
        # scaled with all its phases: tests/test_engine)
        'train_cfg.max_iters=2',
        'default_hooks.logger.interval=1',
    ]
    log = _run([sys.executable, train, config, '--work-dir',
                str(elsewhere / 'work'), '--cfg-options'] + options,
               str(elsewhere), env, timeout=600)
    assert osp.isfile(elsewhere / 'work' / 'iter_2.pth')
    # the shipped toy weights loaded into the students
    weights = osp.join(installed, 'mmseg_dupl', '.mim', 'checkpoints',
                       'toy_vit_cls.pth')
    loaded = re.findall(r'tensors loaded from (\S+)', log)
    assert loaded, log[-3000:]
    assert {osp.realpath(p) for p in loaded} == {osp.realpath(weights)}


def test_checkout_names_resolve_and_unknown_is_named():
    assert mim_root() == REPO  # a checkout wins over a stale .mim copy
    assert get_config_path(TOY_NAME) == osp.join(REPO, 'configs',
                                                 'dupl_vit-tiny_toy.py')
    with pytest.raises(FileNotFoundError,
                       match="did you mean 'mmseg_dupl::dupl_vit-b_voc.py'"):
        get_config_path('mmseg_dupl::dupl_vit-b-voc.py')
    with pytest.raises(ValueError, match='only the mmseg_dupl:: prefix'):
        get_config_path('mmseg::segformer/x.py')
