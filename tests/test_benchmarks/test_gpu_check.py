# Copyright (c) OpenMMLab. All rights reserved.
"""benchmarks/gpu_check.sh: its no-GPU path, and the CPU twin of the
measuring code (the GPU run itself needs a CUDA machine)."""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.mark.skipif(torch.cuda.is_available(),
                    reason='this host has CUDA: the script would measure')
def test_gpu_check_sh_without_cuda_prints_one_line_and_exits_0():
    env = dict(os.environ, PYTHON=sys.executable)
    proc = subprocess.run(
        [osp.join(REPO, 'benchmarks', 'gpu_check.sh')], cwd='/', env=env,
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 1 and 'needs a CUDA GPU' in lines[0]
    assert proc.stderr == ''


def test_gpu_check_cpu_twin_prints_every_figure():
    """The same code on the CPU, toy config at 64x64: phase times in both
    precisions, the projection and the GMM comparison."""
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1')
    proc = subprocess.run(
        [sys.executable, osp.join(REPO, 'benchmarks', 'gpu_check.py'),
         '--device', 'cpu', '--config', 'toy', '--crop', '64', '--batch',
         '2', '--iters', '1', '--warmup', '1'],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'dupl_vit-tiny_toy.py'))
    cam, gmm = (cfg.model.train_cfg.phases[k] for k in ('cam', 'gmm'))
    total = cfg.train_cfg.max_iters
    projected = (f'projected {total} iterations ({cam} A, {gmm - cam} B, '
                 f'{total - gmm} C)')
    for precision in ('fp32', 'bf16'):
        line = next(x for x in out.splitlines()
                    if x.startswith(f'{precision}: phase A'))
        assert projected in line
        hours = float(line.split('C): ')[1].split(' h')[0])
        assert hours > 0
    gmm = next(x for x in out.splitlines() if x.startswith('GMM filter'))
    agreement = float(gmm.rsplit('agreement ', 1)[1].rstrip('%'))
    assert agreement > 99.99
