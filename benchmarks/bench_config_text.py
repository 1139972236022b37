# Copyright (c) OpenMMLab. All rights reserved.
"""What yapf's config formatting costs a Runner, with and without the cache.

mmengine's ``Config.pretty_text`` runs yapf at every read; a Runner reads it
to log the config, to dump it and at every checkpoint save. This times
``reads`` reads of the toy DuPL config (one Runner logging, dumping and
saving ``reads - 2`` checkpoints) with ``data_root`` paths of several
lengths, once with mmengine's yapf call as it is and once through
``mmseg_dupl.utils.config_text_cache`` (the default once ``mmseg_dupl`` is
imported), and checks that both give the same text.
"""
import argparse
import os.path as osp
import sys
import time
from typing import Dict, List

BENCH_DIR = osp.dirname(osp.abspath(__file__))
sys.path.insert(0, BENCH_DIR)

from common import (REPO, append_section, machine_info,  # noqa: E402
                    markdown_table, set_threads)

import mmengine.config.config as mmengine_config  # noqa: E402
from mmengine.config import Config  # noqa: E402
from yapf.yapflib.yapf_api import FormatCode  # noqa: E402

from mmseg_dupl.utils.config_text_cache import \
    cached_format_code  # noqa: E402

TOY_CONFIG = osp.join(REPO, 'configs', 'dupl_vit-tiny_toy.py')
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def config_with_root(length: int) -> Config:
    """The toy config with a ``data_root`` of ``length`` characters."""
    cfg = Config.fromfile(TOY_CONFIG)
    root = '/data/' + 'd' * (length - len('/data/'))
    for loader in LOADERS:
        cfg[loader].dataset.data_root = root
    return cfg


def time_reads(cfg: Config, format_code, reads: int) -> Dict:
    """Seconds of the first read and of all ``reads`` reads, and the
    texts, with ``format_code`` as mmengine's yapf call."""
    saved = mmengine_config.FormatCode
    mmengine_config.FormatCode = format_code
    try:
        texts, times = [], []
        for _ in range(reads):
            start = time.perf_counter()
            texts.append(cfg.pretty_text)
            times.append(time.perf_counter() - start)
    finally:
        mmengine_config.FormatCode = saved
    return dict(first=times[0], total=sum(times), texts=texts)


def main(argv: List[str] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--lengths', type=int, nargs='+',
                        default=[30, 60, 70, 90])
    parser.add_argument('--reads', type=int, default=5,
                        help='reads per Runner: log, dump, 3 checkpoints')
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--no-write', action='store_true')
    args = parser.parse_args(argv)
    set_threads(args.threads)
    info = machine_info()
    rows = []
    for length in args.lengths:
        cfg = config_with_root(length)
        plain = time_reads(cfg, FormatCode, args.reads)
        cached = time_reads(cfg, cached_format_code(FormatCode), args.reads)
        if plain['texts'] != cached['texts']:
            raise AssertionError(f'data_root of {length} characters: the '
                                 'cached text differs from yapf\'s')
        rows.append([length, f"{plain['first']:.2f}",
                     f"{plain['total']:.2f}", f"{cached['total']:.2f}",
                     f"{plain['total'] / cached['total']:.1f}x"])
    body = (f'The toy DuPL config, {args.reads} reads of '
            '`Config.pretty_text` (a Runner: log, dump, '
            f'{args.reads - 2} checkpoint saves), per `data_root` length; '
            'seconds. The texts of both ways are identical (checked).\n\n' +
            markdown_table(['data_root characters', 'first read (yapf)',
                            f'{args.reads} reads, mmengine',
                            f'{args.reads} reads, cached', 'saved'], rows))
    print(body)
    if not args.no_write:
        append_section('Config text: yapf per read vs cached', body, info)


if __name__ == '__main__':
    main()
