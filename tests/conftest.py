# Copyright (c) OpenMMLab. All rights reserved.
"""Shared test setup: mmseg's default scope, so registries resolve types;
one torch thread per pytest-xdist worker."""
import os

if os.environ.get('PYTEST_XDIST_WORKER'):
    # `make test` runs a worker per core: with torch's default of a thread
    # per core in every worker (and in the trainings the tests start as
    # child processes, which inherit this), the cores are oversubscribed
    # and OpenMP spins. Set before torch is imported.
    os.environ['OMP_NUM_THREADS'] = '1'
    os.environ['MKL_NUM_THREADS'] = '1'

from mmengine.registry import init_default_scope  # noqa: E402

init_default_scope('mmseg')

import os.path as osp  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import pytest  # noqa: E402

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
# tools/ holds demo-only modules the tests import (toy_voc_data). Appended,
# not prepended: tools/test.py and tools/train.py must not shadow anything.
if osp.join(REPO, 'tools') not in sys.path:
    sys.path.append(osp.join(REPO, 'tools'))
TOY_CONFIG = osp.join(REPO, 'configs', 'dupl_vit-tiny_toy.py')


def toy_train_options(data_root: str,
                      max_iters: int = 40,
                      cam: int = 10,
                      gmm: int = 25) -> list:
    """--cfg-options that shrink the toy config to a test-suite run that
    still crosses all three phases (seg labels from ``cam``, GMM filter
    from ``gmm``; the threshold descends from ``cam`` to ``max_iters``)."""
    return [
        f'train_dataloader.dataset.data_root={data_root}',
        f'val_dataloader.dataset.data_root={data_root}',
        f'test_dataloader.dataset.data_root={data_root}',
        'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        'val_dataloader.num_workers=0',
        'val_dataloader.persistent_workers=False',
        f'train_cfg.max_iters={max_iters}',
        f'train_cfg.val_interval={max_iters}',
        f'default_hooks.checkpoint.interval={max_iters}',
        'default_hooks.logger.interval=5',
        f'model.train_cfg.phases.cam={cam}',
        f'model.train_cfg.phases.gmm={gmm}',
        f'model.train_cfg.phases.end={max_iters}',
        f'param_scheduler.0.max_iters={max_iters}',
        f'param_scheduler.0.warmup_iters={min(5, max_iters)}',
        # from scratch: the fixtures test the pipeline, not the weights
        # (their loading route is tested in
        # tests/test_tools/test_pretrain_toy_backbone.py)
        'model.student.backbone.init_cfg=None',
    ]


@pytest.fixture(scope='module')
def one_torch_thread():
    """One intra-op thread for a test module's in-process trainings: on the
    shared 2-core host, two OpenMP threads make each toy iteration several
    times slower (barrier waits). Use with
    ``pytestmark = pytest.mark.usefixtures('one_torch_thread')``."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def shared_once(tmp_path_factory, name: str, build) -> str:
    """``build(path)`` once per test run, in a folder all pytest-xdist
    workers share (their base temp folders' parent), behind a file lock:
    the first worker that needs it builds it, the others wait and reuse
    it. Read-only for the tests: one that changes it copies it first.

    Args:
        tmp_path_factory: pytest's session factory.
        name (str): The folder's name.
        build (callable): ``build(path: str)`` fills the empty folder.

    Returns:
        str: The folder.
    """
    from filelock import FileLock
    base = tmp_path_factory.getbasetemp()
    if os.environ.get('PYTEST_XDIST_WORKER'):
        base = base.parent
    root = osp.join(str(base), name)
    with FileLock(root + '.lock'):
        if not osp.isfile(osp.join(root, '.built')):
            # a worker that failed here left a partial folder: start anew
            shutil.rmtree(root, ignore_errors=True)
            os.makedirs(root)
            build(root)
            open(osp.join(root, '.built'), 'w').close()
    return root


@pytest.fixture(scope='session')
def toy_data_root(tmp_path_factory) -> str:
    """A small toy VOC dataset (40 train / 12 val / 4 test images), made
    once per test run (read-only: copy it to change it)."""
    from toy_voc_data import make_toy_voc

    def build(root: str) -> None:
        make_toy_voc(root, num_train=40, num_val=12, num_test=4, seed=0)

    return shared_once(tmp_path_factory, 'toy_voc', build)


def _train_toy(work_dir: str, data_root: str) -> None:
    """tools/train.py on the toy config, its output in ``train.log``."""
    cmd = [
        sys.executable,
        osp.join(REPO, 'tools', 'train.py'), TOY_CONFIG, '--work-dir',
        work_dir, '--cfg-options'
    ] + toy_train_options(data_root)
    proc = subprocess.run(
        cmd, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    with open(osp.join(work_dir, 'train.log'), 'w') as f:
        f.write(proc.stdout + proc.stderr)


@pytest.fixture(scope='session')
def toy_checkpoint(toy_data_root, tmp_path_factory) -> dict:
    """Train the toy config for 40 iterations with tools/train.py (all
    three phases), once per test run, and return its paths: ``work_dir``,
    ``checkpoint``, ``config`` (the dumped config), ``log`` (stdout and
    stderr) and ``data_root``. Read-only: nothing may resume it."""
    work_dir = shared_once(tmp_path_factory, 'toy_train',
                           lambda root: _train_toy(root, toy_data_root))
    with open(osp.join(work_dir, 'train.log')) as f:
        log = f.read()
    return dict(
        work_dir=work_dir,
        checkpoint=osp.join(work_dir, 'iter_40.pth'),
        config=osp.join(work_dir, 'dupl_vit-tiny_toy.py'),
        log=log,
        data_root=toy_data_root)
