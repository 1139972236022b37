# Copyright (c) OpenMMLab. All rights reserved.
"""GMM noise filter: batched torch EM against the official per-image
sklearn loop (spec 8), on 4 images x 2 students of 448x448 loss maps.

Three implementations:

- ``sklearn``: the official code, per image and student:
  ``GaussianMixture(2, max_iter=10, tol=1e-2, reg_covar=5e-4,
  random_state=0)`` fitted on the foreground losses > 0.1 when there are
  more than 1000 of them, ``predict_proba`` on all pixels.
- ``current``: ``mmseg_dupl.models.utils.gmm.gmm_noise_mask`` on all 8 maps.
- ``proposed``: ``proposed_gmm_noise_mask`` below, a faster version of the
  same algorithm offered for gmm.py (same rules, same EM stopping rule).

Reports the median time of interleaved runs, the speed ratios and the
noise-mask agreement (fraction of equal pixels) with sklearn.

    .venv/bin/python benchmarks/bench_gmm.py [--repeats 7] [--threads 1]
"""
import argparse
import cProfile
import io
import math
import pstats
import time
import warnings
from typing import Callable, Dict, Tuple

import numpy as np
import torch
from common import (append_section, machine_info, markdown_table, median,
                    set_threads)
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture
from torch import Tensor

from mmseg_dupl.models.utils.gmm import gmm_noise_mask

SIZE = 448
IGNORE = 255
#: The four images of the timed batch: a typical crop, a crop padded
#: outside its img_box, one small object (< 1000 fit pixels: never
#: fitted), and labels without noise (unimodal losses: fit rejected).
KINDS = ('typical', 'padded', 'small', 'clean')
GMM_RULES = dict(min_loss=0.1, min_pixels=1000, min_mean_gap=1.0,
                 gamma=0.95, max_iter=10, tol=1e-2, reg_covar=5e-4)

# ---------------------------------------------------------------------------
# synthetic loss maps
# ---------------------------------------------------------------------------


def _ellipse(rng: np.random.Generator, scale: float) -> np.ndarray:
    """Normalised squared radius of a random ellipse on the 448 grid."""
    cy, cx = rng.uniform(0.2, 0.8, 2) * SIZE
    ry, rx = rng.uniform(0.5, 1.0, 2) * scale * SIZE
    yy, xx = np.mgrid[:SIZE, :SIZE]
    return ((yy - cy) / ry)**2 + ((xx - cx) / rx)**2


def synthetic_image(rng: np.random.Generator,
                    kind: str) -> Tuple[np.ndarray, np.ndarray]:
    """Pseudo labels and per-pixel CE maps of one image for both students.

    Labels: 1-3 elliptic objects of random classes on background, a 255
    band around each object (the two-threshold uncertain band), and for
    ``padded`` a 255 region outside the crop's img_box. Losses: ignored
    pixels 0 (CE with ignore_index); background and clean foreground
    small (gamma, mean about 0.08 / 0.18); mislabelled parts of the objects
    are coherent blobs with high loss (normal, mean 2-3.5).

    Returns:
        tuple[np.ndarray]: losses float32 (2, 448, 448) and labels int64
        (2, 448, 448), one map per student.
    """
    label = np.zeros((SIZE, SIZE), np.int64)
    for _ in range(1 if kind == 'small' else rng.integers(1, 4)):
        radius = _ellipse(rng, 0.05 if kind == 'small' else
                          rng.uniform(0.15, 0.35))
        label[radius <= 1] = rng.integers(1, 21)
        label[(radius > 1) & (radius <= 1.25)] = IGNORE
    if kind == 'padded':
        label[rng.integers(300, 400):] = IGNORE
    losses = np.zeros((2, SIZE, SIZE), np.float32)
    fg = (label != 0) & (label != IGNORE)
    for loss in losses:
        loss[label == 0] = rng.gamma(1.0, 0.08, (label == 0).sum())
        loss[fg] = rng.gamma(1.5, 0.12, fg.sum())
        if kind != 'clean':
            for _ in range(rng.integers(1, 4)):
                blob = (_ellipse(rng, rng.uniform(0.05, 0.12)) <= 1) & fg
                loss[blob] = np.abs(
                    rng.normal(
                        rng.uniform(2., 3.5), rng.uniform(.4, .9),
                        blob.sum()))
    return losses, np.stack([label, label])


def synthetic_batch(seed: int, kinds=KINDS) -> Tuple[Tensor, Tensor]:
    """(8, 448*448) losses and labels: image i, student k at row 2i+k."""
    rng = np.random.default_rng(seed)
    maps = [synthetic_image(rng, kind) for kind in kinds]
    losses = np.concatenate([m[0] for m in maps]).reshape(len(kinds) * 2, -1)
    labels = np.concatenate([m[1] for m in maps]).reshape(len(kinds) * 2, -1)
    return torch.from_numpy(losses), torch.from_numpy(labels)


# ---------------------------------------------------------------------------
# the official per-image sklearn filter
# ---------------------------------------------------------------------------


def sklearn_noise_mask(losses: Tensor, labels: Tensor) -> Tensor:
    """Spec 8 as the official code runs it: one sklearn fit per row, the
    tensors moved to numpy per image (``.cpu().numpy()``)."""
    noisy = torch.zeros_like(labels, dtype=torch.bool)
    for i in range(losses.shape[0]):
        loss, label = losses[i], labels[i]
        foreground = (label != 0) & (label != IGNORE)
        fit_on = foreground & (loss > GMM_RULES['min_loss'])
        values = loss[fit_on].cpu().numpy().reshape(-1, 1)
        if len(values) <= GMM_RULES['min_pixels']:
            continue
        gmm = GaussianMixture(
            n_components=2, max_iter=10, tol=1e-2, reg_covar=5e-4,
            random_state=0).fit(values)
        means = gmm.means_.ravel()
        if abs(means[0] - means[1]) <= GMM_RULES['min_mean_gap']:
            continue
        post = gmm.predict_proba(loss.cpu().numpy().reshape(-1, 1))
        post = torch.from_numpy(post[:, means.argmax()])
        noisy[i] = (post > GMM_RULES['gamma']) & foreground
    return noisy


# ---------------------------------------------------------------------------
# the proposed faster batched filter
# ---------------------------------------------------------------------------


def _pack_rows(x: Tensor, keep: Tensor) -> Tuple[Tensor, Tensor]:
    """Left-pack the kept entries of each row, zero padded.

    Args:
        x (Tensor): Values (R, P).
        keep (Tensor): Bool (R, P).

    Returns:
        tuple[Tensor]: packed values (R, M) and their validity (R, M),
        M = the largest kept count of a row.
    """
    counts = keep.sum(dim=1)
    valid = torch.arange(int(counts.max()), device=x.device)[None] < \
        counts[:, None]
    packed = x.new_zeros(valid.shape)
    return packed.masked_scatter_(valid, x.masked_select(keep)), valid


def _two_means_threshold(x: Tensor, valid: Tensor, lowest: float,
                         bins: int = 16384,
                         max_iter: int = 300) -> Tensor:
    """Split point of 1-D two-means (Lloyd from the min and max) per row,
    run on a fine histogram of the row (its counts and sums per bin).

    The histogram replaces the sort of ``two_means_split``; the split is
    exact up to a bin width (range / 16384), and it only seeds EM.

    Args:
        x (Tensor): Packed values (R, M), all valid ones > ``lowest``.
        valid (Tensor): Bool (R, M).
        lowest (float): Lower edge of the histogram.

    Returns:
        Tensor: float64 (R, ) thresholds (upper cluster: x > threshold).
    """
    rows = x.shape[0]
    weight = valid.to(x.dtype)
    high = (x * weight).amax(dim=1)
    scale = bins / (high - lowest).clamp(min=1e-12)
    index = ((x - lowest) * scale[:, None]).clamp_(0, bins - 1).long()
    index += torch.arange(rows, device=x.device)[:, None] * bins
    count = torch.bincount(index.flatten(), weight.flatten(), rows * bins)
    total = torch.bincount(index.flatten(), (x * weight).flatten(),
                           rows * bins)
    cum_n = count.view(rows, bins).double().cumsum(dim=1)
    cum_s = total.view(rows, bins).double().cumsum(dim=1)
    n, s = cum_n[:, -1], cum_s[:, -1]
    first = (cum_n > 0).long().argmax(dim=1, keepdim=True)
    low = (cum_s.gather(1, first) / cum_n.gather(1, first))[:, 0]
    high, scale = high.double(), scale.double()
    last = None
    for _ in range(max_iter):
        # bins up to the one holding the mid-point count as "low"
        k = ((low + high) / 2 - lowest) * scale
        k = k.floor().clamp(0, bins - 1).long()[:, None]
        n_low, s_low = cum_n.gather(1, k)[:, 0], cum_s.gather(1, k)[:, 0]
        low = torch.where(n_low > 0, s_low / n_low.clamp(min=1), low)
        high = torch.where(n_low < n, (s - s_low) / (n - n_low).clamp(min=1),
                           high)
        if last is not None and torch.equal(k, last):
            break
        last = k
    return (low + high) / 2


def _log_density_coeffs(means: Tensor, variances: Tensor,
                        weights: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """log(w_k N(x | mu_k, var_k)) = a_k x^2 + b_k x + c_k, each (R, 2)."""
    a = -0.5 / variances
    b = means / variances
    c = -0.5 * (math.log(2 * math.pi) + variances.log() +
                means.square() / variances) + weights.log()
    return a, b, c


def _moments(resp: Tensor, feats: Tuple[Tensor, ...]) -> Tensor:
    """Sums of ``resp * f`` over each row for every feature, float64."""
    return torch.stack([(resp * f).sum(dim=1) for f in feats], 1).double()


def _m_step(upper: Tensor, total: Tensor,
            reg_covar: float) -> Tuple[Tensor, Tensor, Tensor]:
    """sklearn's M-step from the moments [sum r, sum r x, sum r x^2] of
    the upper component and of all points (component 0 = the rest)."""
    stats = torch.stack([total - upper, upper], dim=1)  # (R, 2, 3)
    nk = stats[..., 0] + 10 * torch.finfo(torch.float32).eps
    means = stats[..., 1] / nk
    variances = (stats[..., 2] - 2 * means * stats[..., 1] +
                 means.square() * stats[..., 0]) / nk + reg_covar
    return nk, means, variances


def _em(x: Tensor, valid: Tensor, threshold: Tensor, max_iter: int,
        tol: float, reg_covar: float) -> Tuple[Tensor, Tensor, Tensor]:
    """Two-component 1-D EM from the two-means split, sklearn's stopping
    rule per row; all rows stop as soon as every row has converged.

    The E-step uses the log-odds d = log p1 - log p0, a quadratic in x:
    resp_1 = sigmoid(d) and log p(x) = log p0 + softplus(d), so one pass
    computes d and the M-step only needs 3 weighted sums.
    """
    weight = valid.to(x.dtype)
    xm, x2m = x * weight, x * x * weight
    feats = (weight, xm, x2m)
    total = _moments(weight, feats)
    n = total[:, 0]
    upper = (x > threshold.to(x.dtype)[:, None]) * weight
    nk, means, variances = _m_step(_moments(upper, feats), total, reg_covar)
    weights = nk / n[:, None]
    bound = means.new_full(n.shape, -math.inf)
    done = torch.zeros_like(n, dtype=torch.bool)
    for _ in range(max_iter):
        a, b, c = _log_density_coeffs(means, variances, weights)
        da, db, dc = ((t[:, 1:] - t[:, :1]).to(x.dtype) for t in (a, b, c))
        d = torch.addcmul(torch.addcmul(dc, db, x), da, x * x)
        resp = torch.sigmoid(d)
        # stable softplus(d) = relu(d) - log(sigmoid(|d|))
        softplus = torch.relu(d).sub_(torch.sigmoid(d.abs()).log_())
        new_bound = (a[:, 0] * total[:, 2] + b[:, 0] * total[:, 1] +
                     c[:, 0] * n + (softplus * weight).sum(1).double()) / n
        nk, new_means, new_vars = _m_step(
            _moments(resp, feats), total, reg_covar)
        keep = done[:, None]  # converged rows keep their parameters
        means = torch.where(keep, means, new_means)
        variances = torch.where(keep, variances, new_vars)
        weights = torch.where(keep, weights, nk / nk.sum(1, keepdim=True))
        converged = (new_bound - bound).abs() < tol
        bound = torch.where(done, bound, new_bound)
        done = done | converged
        if bool(done.all()):
            break
    return means, variances, weights


def proposed_gmm_noise_mask(losses: Tensor,
                            labels: Tensor,
                            min_loss: float = 0.1,
                            min_pixels: int = 1000,
                            min_mean_gap: float = 1.0,
                            gamma: float = 0.95,
                            ignore_index: int = 255,
                            max_iter: int = 10,
                            tol: float = 1e-2,
                            reg_covar: float = 5e-4) -> Tensor:
    """``gmm_noise_mask`` (same arguments, same rules), faster on the CPU.

    Differences in how, not what: only rows with more than ``min_pixels``
    fit pixels are fitted; their fit values are packed (EM touches about
    a third of the pixels); two-means runs on a histogram instead of a
    sort; EM works on the log-odds (one sigmoid instead of a 2-way
    logsumexp, exp and normalisation) in float32 with float64 sums, and
    stops when every row has met sklearn's tolerance; the posterior test
    ``p_noisy > gamma`` is ``d > log(gamma / (1 - gamma))``, evaluated
    only for the accepted rows.
    """
    x = losses.detach().flatten(1).float()
    label = labels.flatten(1)
    foreground = (label != 0) & (label != ignore_index)
    fit_on = foreground & (x > min_loss)
    noisy = torch.zeros_like(foreground)
    rows = (fit_on.sum(dim=1) > min_pixels).nonzero()[:, 0]
    if rows.numel() > 0:
        packed, valid = _pack_rows(x[rows], fit_on[rows])
        threshold = _two_means_threshold(packed, valid, min_loss)
        means, variances, weights = _em(packed, valid, threshold, max_iter,
                                        tol, reg_covar)
        accept = (means[:, 0] - means[:, 1]).abs() > min_mean_gap
        rows = rows[accept]
    if rows.numel() > 0:
        a, b, c = _log_density_coeffs(means[accept], variances[accept],
                                      weights[accept])
        hi = means[accept].argmax(dim=1, keepdim=True)
        da, db, dc = ((t.gather(1, hi) - t.gather(1, 1 - hi)).float()
                      for t in (a, b, c))
        xr = x[rows]
        d = torch.addcmul(torch.addcmul(dc, db, xr), da, xr * xr)
        noisy[rows] = (d > math.log(gamma / (1 - gamma))) & foreground[rows]
    return noisy.view(labels.shape)


# ---------------------------------------------------------------------------
# the benchmark
# ---------------------------------------------------------------------------

METHODS: Dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    'sklearn (official, per image)': sklearn_noise_mask,
    'current gmm_noise_mask (batched)': gmm_noise_mask,
    'proposed (batched)': proposed_gmm_noise_mask,
}


def time_interleaved(losses: Tensor, labels: Tensor,
                     repeats: int) -> Dict[str, list]:
    """Seconds per call of each method, the methods taking turns so that a
    change of machine load hits all of them alike."""
    times = {name: [] for name in METHODS}
    for fn in METHODS.values():  # warm-up
        fn(losses, labels)
    for _ in range(repeats):
        for name, fn in METHODS.items():
            start = time.perf_counter()
            fn(losses, labels)
            times[name].append(time.perf_counter() - start)
    return times


def profile_current(losses: Tensor, labels: Tensor, top: int = 8) -> str:
    """cProfile of one ``gmm_noise_mask`` call: the top functions by
    internal time, as a markdown table."""
    profiler = cProfile.Profile()
    profiler.enable()
    gmm_noise_mask(losses, labels)
    profiler.disable()
    stats = pstats.Stats(profiler, stream=io.StringIO())
    rows = []
    for (path, line, func), (_, ncalls, tottime, _, _) in sorted(
            stats.stats.items(), key=lambda kv: -kv[1][2])[:top]:
        where = func if path == '~' else f'{path.split("/")[-1]}:{func}'
        rows.append([where, ncalls, f'{tottime * 1e3:.1f}'])
    return markdown_table(['function', 'calls', 'self ms'], rows)


def agreement(batches: int) -> Tuple[list, dict]:
    """Noise-mask agreement with sklearn over ``batches`` random batches
    (seeds 1.., four 'typical'/'padded'/random kinds each)."""
    rows, totals = [], {name: [0, 0] for name in METHODS}
    kinds = ('typical', 'padded', 'typical', 'clean')
    for seed in range(1, batches + 1):
        losses, labels = synthetic_batch(seed, kinds)
        ref = sklearn_noise_mask(losses, labels)
        for name, fn in list(METHODS.items())[1:]:
            same = (fn(losses, labels) == ref).sum().item()
            totals[name][0] += same
            totals[name][1] += ref.numel()
        rows.append(int(ref.sum()))
    return rows, totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--repeats', type=int, default=7)
    parser.add_argument('--threads', type=int, default=1,
                        help='torch intra-op threads (default 1: the '
                        'shared 2-core host; 0 keeps torch\'s default)')
    parser.add_argument('--agreement-batches', type=int, default=4)
    parser.add_argument('--no-write', action='store_true',
                        help='print only, do not append to RESULTS.md')
    args = parser.parse_args()
    set_threads(args.threads)
    info = machine_info()
    warnings.simplefilter('ignore', ConvergenceWarning)

    losses, labels = synthetic_batch(0)
    times = time_interleaved(losses, labels, args.repeats)
    ref = sklearn_noise_mask(losses, labels)
    base = median(times['sklearn (official, per image)'])
    table = []
    for name, fn in METHODS.items():
        mask = fn(losses, labels)
        t = median(times[name])
        table.append([
            name, f'{t * 1e3:.1f}', f'{min(times[name]) * 1e3:.1f}',
            f'{base / t:.2f}x', f'{(mask == ref).float().mean():.6%}',
            int(mask.sum())
        ])
    fit_counts = ((labels != 0) & (labels != IGNORE) &
                  (losses > 0.1)).sum(1).tolist()
    noisy_sk, totals = agreement(args.agreement_batches)
    agree = '\n'.join(
        f'- {name}: {s / n:.6%} of {n} pixels' for name, (s, n) in
        totals.items() if n)
    body = (
        f'8 maps (4 images x 2 students, kinds {", ".join(KINDS)}), '
        f'448x448; fit pixels per map: {fit_counts}; sklearn flags '
        f'{int(ref.sum())} noisy pixels. Median of {args.repeats} '
        f'interleaved runs, {torch.get_num_threads()} torch thread(s).\n\n'
        + markdown_table([
            'method', 'median ms', 'min ms', 'speed vs sklearn',
            'agreement with sklearn', 'noisy pixels'
        ], table) +
        f'\n\nAgreement over {args.agreement_batches} more random batches '
        f'(sklearn noisy pixels per batch: {noisy_sk}):\n\n{agree}\n\n'
        'Where the current implementation spends its time (cProfile, one '
        'call):\n\n' + profile_current(losses, labels))
    print(body)
    if not args.no_write:
        append_section('GMM noise filter: batched torch vs sklearn', body,
                       info)


if __name__ == '__main__':
    main()
