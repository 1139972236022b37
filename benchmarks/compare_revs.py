# Copyright (c) OpenMMLab. All rights reserved.
"""A/B timing of one phase-C training iteration: the working tree against
another commit, in one process pair, alternating.

``bench_train_step.py --compare REV`` extracts REV with ``git archive``
into a temporary directory and starts two long-lived children of this
script, one per tree (``PYTHONPATH`` and ``sys.path`` pointing at that
tree only, checked through ``mmseg_dupl.__file__``). Each builds the same
model from the same seed and its tree's config, warms up, then the parent
asks them for one iteration at a time, A, B, A, B, ..., on the same
batches, so that the load of other jobs on a shared machine falls on both
alike. Reported: per-tree median, min, max and inter-quartile range of the
iteration time (wall) and the median CPU time of the process, the median
of the per-pair ratios B / A of both, the loss of the
first (warm-up) iteration of each (the same model, weights and batch,
before any optimizer step: a numerics check) and each child's peak RSS.
"""
import json
import os
import os.path as osp
import subprocess
import sys
import tempfile
import time
from typing import Dict, List

from common import REPO, markdown_table, median

PROMPT = '@@'  # protocol lines start with this; other stdout is logging


def git_archive(rev: str, dest: str) -> str:
    """Extract commit ``rev`` of this repository into ``dest``; return
    the full sha."""
    sha = subprocess.run(['git', 'rev-parse', rev], cwd=REPO, check=True,
                         capture_output=True, text=True).stdout.strip()
    archive = subprocess.run(['git', 'archive', sha], cwd=REPO, check=True,
                             capture_output=True).stdout
    subprocess.run(['tar', '-x', '-C', dest], input=archive, check=True)
    return sha


class Child:
    """One long-lived child process serving iterations over a pipe."""

    def __init__(self, label: str, tree: str, args: List[str]) -> None:
        self.label, self.tree = label, tree
        env = dict(os.environ, PYTHONPATH=tree)
        self.log = tempfile.TemporaryFile('w+')  # the child's stderr
        self.proc = subprocess.Popen(
            [sys.executable, osp.join(REPO, 'benchmarks',
                                      'bench_train_step.py')] + args +
            ['--child', 'serve', '--tree', tree],
            cwd=tree, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self.log, text=True, bufsize=1)

    def read(self) -> dict:
        for line in self.proc.stdout:
            if line.startswith(PROMPT):
                return json.loads(line[len(PROMPT):])
        self.log.seek(0)
        raise RuntimeError(f'{self.label} child ({self.tree}) exited with '
                           f'{self.proc.wait()}:\n{self.log.read()[-3000:]}')

    def ask(self, command: str) -> dict:
        self.proc.stdin.write(command + '\n')
        self.proc.stdin.flush()
        return self.read()


def serve(build_step, tree: str) -> None:
    """Child side: build (``build_step() -> (step, first_loss)``, ``step(i)
    -> dict``), then answer ``step`` and ``exit`` lines from stdin with one
    JSON line each."""
    import mmseg_dupl
    step, first_loss = build_step()
    where = osp.dirname(osp.dirname(osp.abspath(mmseg_dupl.__file__)))
    _say(dict(ready=True, mmseg_dupl=where, first_loss=first_loss,
              same_tree=osp.samefile(where, tree)))
    index = 0
    for line in sys.stdin:
        if line.strip() == 'step':
            _say(step(index))
            index += 1
        else:
            from common import peak_rss_mib
            _say(dict(rss_peak=peak_rss_mib()))
            return


def _say(obj: dict) -> None:
    sys.stdout.write(PROMPT + json.dumps(obj) + '\n')
    sys.stdout.flush()


def compare(rev: str, args: List[str], iters: int) -> dict:
    """Run the A/B pairs; return the raw per-iteration records."""
    with tempfile.TemporaryDirectory(prefix='bench_rev_') as tmp:
        sha = git_archive(rev, tmp)
        children = [Child('current', REPO, args), Child(rev, tmp, args)]
        try:
            ready = [c.read() for c in children]
            for child, info in zip(children, ready):
                if not info['same_tree']:
                    raise RuntimeError(
                        f'{child.label}: mmseg_dupl imported from '
                        f'{info["mmseg_dupl"]}, not {child.tree}')
            steps: Dict[str, List[dict]] = {'current': [], 'rev': []}
            for i in range(iters):
                # alternate which tree goes first in each pair
                order = children if i % 2 == 0 else children[::-1]
                for child in order:
                    key = 'current' if child is children[0] else 'rev'
                    steps[key].append(child.ask('step'))
                    print(f'{key} {i}: {steps[key][-1]["total"]:.3f} s',
                          file=sys.stderr)
            rss = [c.ask('exit')['rss_peak'] for c in children]
        finally:
            for c in children:
                if c.proc.poll() is None:
                    c.proc.kill()
                c.proc.wait()
    return dict(rev=rev, sha=sha, steps=steps,
                rss_peak=dict(current=rss[0], rev=rss[1]),
                first_loss=dict(current=ready[0]['first_loss'],
                                rev=ready[1]['first_loss']))


def _quartiles(values: List[float]) -> str:
    ordered = sorted(values)
    n = len(ordered)
    q1, q3 = ordered[n // 4], ordered[(3 * n) // 4 if n > 1 else 0]
    return f'{q1:.3f}-{q3:.3f}'


def report(res: dict, description: str, stages: List[str]) -> str:
    """Markdown figures of a ``compare`` run."""
    cur, old = res['steps']['current'], res['steps']['rev']
    rev = res['rev'] if res['sha'].startswith(res['rev']) else \
        f'{res["rev"]} ({res["sha"][:7]})'
    rows = []
    for key, label, steps in (('current', 'this tree', cur),
                              ('rev', rev, old)):
        totals = [s['total'] for s in steps]
        rows.append([
            label, f'{median(totals):.3f}', f'{min(totals):.3f}',
            f'{max(totals):.3f}', _quartiles(totals),
            f'{median([s["cpu"] for s in steps]):.3f}'
        ] + [f'{median([s.get(k, 0.) for s in steps]):.3f}' for k in stages]
                    + [f'{res["rss_peak"][key]:.0f}'])
    ratios = [o['total'] / c['total'] for c, o in zip(cur, old)]
    cpu_ratios = [o['cpu'] / c['cpu'] for c, o in zip(cur, old)]
    loss = res['first_loss']
    loss_diff = abs(loss['current'] - loss['rev']) / abs(loss['rev'])
    table = markdown_table(
        ['tree', 'median s/iter (wall)', 'min', 'max', 'IQR',
         'median CPU s/iter'] +
        [f'{k} (median s)' for k in stages] + ['peak RSS (MiB)'], rows)
    return (
        f'{description}, {len(cur)} alternating pairs (A/B order swapped '
        'every pair) after one warm-up iteration each.\n\n' + table +
        f'\n\n**Per-pair ratio {rev} / this tree: median '
        f'{median(ratios):.2f}x (min {min(ratios):.2f}, max '
        f'{max(ratios):.2f}); this tree takes '
        f'{1 - median(ratios) ** -1:.1%} less time per iteration.** '
        f'Per-pair ratio of CPU time (this process only, less moved by '
        f'other jobs): median {median(cpu_ratios):.2f}x (min '
        f'{min(cpu_ratios):.2f}, max {max(cpu_ratios):.2f}). '
        f'Numerics: total loss of the first (warm-up) iteration, same '
        f'seed, weights and batch: {loss["current"]:.7g} vs '
        f'{loss["rev"]:.7g} (relative difference {loss_diff:.1e}).')
