# Copyright (c) OpenMMLab. All rights reserved.
"""Shared helpers of the benchmarks: machine description, timing, peak
memory of a child process, runs in child processes, and the RESULTS.md
writer."""
import datetime
import json
import os
import os.path as osp
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Dict, Iterable, List, Optional, Sequence

import torch

BENCH_DIR = osp.dirname(osp.abspath(__file__))
REPO = osp.dirname(BENCH_DIR)
RESULTS = osp.join(BENCH_DIR, 'RESULTS.md')

if REPO not in sys.path:
    sys.path.insert(0, REPO)


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (or ``platform``)."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(module: str) -> str:
    try:
        return __import__(module).__version__
    except Exception:  # a missing optional package is just not listed
        return 'n/a'


def git_commit() -> str:
    """Short hash of HEAD, with ``+dirty`` when tracked files changed."""
    try:
        head = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'],
                              cwd=REPO, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(['git', 'diff', '--quiet', 'HEAD'],
                               cwd=REPO).returncode != 0
        return head + ('+dirty' if dirty else '')
    except (OSError, subprocess.CalledProcessError):
        return 'n/a'


def machine_info() -> Dict[str, str]:
    """CPU, cores, torch threads, GPU, load and library versions."""
    load = ', '.join(f'{v:.2f}' for v in os.getloadavg())
    return {
        'cpu': cpu_model(),
        'cores': f'{os.cpu_count()} (usable: '
        f'{len(os.sched_getaffinity(0))})',
        'torch threads': str(torch.get_num_threads()),
        'gpu': torch.cuda.get_device_name(0)
        if torch.cuda.is_available() else 'none',
        'load average (1, 5, 15 min) at start': load,
        'python': platform.python_version(),
        'versions': ', '.join(
            f'{m} {_version(m)}' for m in ('torch', 'mmengine', 'mmcv',
                                           'mmseg', 'sklearn', 'numpy')),
        'commit': git_commit(),
    }


def set_threads(threads: Optional[int]) -> int:
    """Set torch's intra-op threads (None keeps the default)."""
    if threads:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def command_line() -> str:
    """The exact command that ran this script, from the repository root."""
    python = osp.relpath(sys.executable, REPO) \
        if sys.executable.startswith(REPO) else sys.executable
    script = osp.relpath(osp.abspath(sys.argv[0]), REPO)
    return ' '.join([python, script] + [shlex.quote(a) for a in sys.argv[1:]])


def time_runs(fn: Callable[[], object], repeats: int,
              warmup: int = 1) -> List[float]:
    """Wall-clock seconds of ``repeats`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, MiB (Linux KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.


def run_child(args: Sequence[str], timeout: int = 900) -> dict:
    """Run ``python <args>`` in a fresh process (so its peak RSS is its
    own) and parse the JSON object it prints on its last stdout line."""
    proc = subprocess.run([sys.executable] + list(args), cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f'child {args} failed:\n{proc.stderr[-3000:]}')
    return json.loads(proc.stdout.strip().splitlines()[-1])


def markdown_table(header: Sequence[str],
                   rows: Sequence[Sequence[object]]) -> str:
    lines = ['| ' + ' | '.join(header) + ' |',
             '|' + '---|' * len(header)]
    lines += ['| ' + ' | '.join(str(c) for c in row) + ' |' for row in rows]
    return '\n'.join(lines)


def append_section(title: str,
                   body: str,
                   info: Optional[Dict[str, str]] = None,
                   command: Optional[str] = None,
                   path: str = RESULTS) -> str:
    """Append a dated section (figures, machine, exact command) to
    RESULTS.md and return its text.

    Args:
        title (str): Section title.
        body (str): Markdown with the figures.
        info (dict, optional): ``machine_info()`` taken at the start of
            the run (so the load is the load before it). Defaults to now.
        command (str, optional): Defaults to ``command_line()``.
        path (str): The results file. Defaults to benchmarks/RESULTS.md.
    """
    info = info or machine_info()
    stamp = datetime.datetime.now().strftime('%Y-%m-%d %H:%M')
    machine = '\n'.join(f'- {k}: {v}' for k, v in info.items())
    text = (f'\n## {title} ({stamp})\n\n{body}\n\nMachine:\n\n{machine}\n\n'
            f'Command:\n\n```bash\n{command or command_line()}\n```\n')
    if not osp.exists(path):
        with open(path, 'w') as f:
            f.write('# Benchmark results\n\nWritten by the scripts in '
                    'benchmarks/ (see README.md); newest sections last.\n')
    with open(path, 'a') as f:
        f.write(text)
    return text


def run_logged(cmd: List[str], log_path: str) -> None:
    """Run ``cmd`` in the repository with one torch thread (each of the
    runs at once gets a core), its output into ``log_path``.

    Raises:
        subprocess.CalledProcessError: The run failed (its log says why).
    """
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
    with open(log_path, 'w') as log:
        subprocess.run(cmd, cwd=REPO, env=env, stdout=log,
                       stderr=subprocess.STDOUT, check=True)


def run_jobs(jobs: Iterable, launch: Callable, report: Callable[[], None],
             workers: int) -> None:
    """``launch(job)`` for every job, ``workers`` at once (threads, each
    waiting on its child process; 0: one after another), and ``report()``
    after each finished job.

    ``report`` runs under a lock: runs finishing together must not rewrite
    the results at once (the later write would miss the earlier run).
    """
    writing = threading.Lock()

    def work(job) -> None:
        launch(job)
        with writing:
            report()
        print(f'finished {job}', flush=True)

    if workers == 0:
        for job in jobs:
            work(job)
        return
    with ThreadPoolExecutor(workers) as pool:
        for future in [pool.submit(work, job) for job in jobs]:
            future.result()
