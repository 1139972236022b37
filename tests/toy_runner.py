# Copyright (c) OpenMMLab. All rights reserved.
"""In-process toy-config runs for the reliability tests (no interpreter
start-up per run): the config tools/train.py would build."""
import argparse
import uuid
from typing import List

from conftest import TOY_CONFIG, toy_train_options
from mmengine.config import Config, DictAction


def short_toy_options(data_root: str, max_iters: int) -> List[str]:
    """``toy_train_options`` with all three phases in ``max_iters`` >= 4
    iterations (seg labels from 1, GMM filter from 3), checkpoints every 2
    iterations, no validation."""
    options = [
        o for o in toy_train_options(data_root, max_iters, cam=1, gmm=3)
        if not o.startswith('param_scheduler.0.warmup')
    ]
    return options + [
        'param_scheduler.0.warmup_iters=2',
        'default_hooks.checkpoint.interval=2',
        'default_hooks.logger.interval=1',
        # mmengine validates at the last iteration whatever val_interval
        # says; val_begin past the end is what turns validation off
        f'train_cfg.val_interval={max_iters + 1}',
        f'train_cfg.val_begin={max_iters + 1}',
        'randomness.deterministic=True',
    ]


def toy_config(work_dir: str,
               options: List[str],
               resume: bool = False,
               config: str = TOY_CONFIG) -> Config:
    """The toy config (or another ``config``) with ``key=value`` options,
    a fresh experiment name (so that in-process runs do not share a logger
    or visualizer)."""
    parser = argparse.ArgumentParser()
    parser.add_argument('--o', nargs='+', action=DictAction)
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(parser.parse_args(['--o'] + options).o)
    name = f'toy_{uuid.uuid4().hex[:8]}'
    cfg.experiment_name = name
    cfg.visualizer.name = name
    cfg.work_dir = work_dir
    cfg.resume = resume
    return cfg
