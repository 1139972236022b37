# Copyright (c) OpenMMLab. All rights reserved.
"""Batched 1-D two-component GMM and DuPL's noise-mask rule (spec 8).

The official code fits ``sklearn.mixture.GaussianMixture(n_components=2,
max_iter=10, tol=1e-2, reg_covar=5e-4, random_state=0)`` per image and per
student on the CPU, copying each loss map to the host. Here every row of an
``(N, P)`` tensor is an independent 1-D problem, and all rows are fitted at
once with EM in torch on the inputs' device, with a handful of host syncs
per call whatever the batch size (spec 15, decision 3).

The EM follows sklearn step by step:

.. code:: text

    init:  hard 2-means split -> resp (0/1) -> M-step (weights /= n)
    for it in 1..max_iter:
        E-step with current params -> lower bound = mean log-likelihood
        M-step (weights /= sum)
        stop (this row) when |lower bound - previous| < tol

sklearn initialises the responsibilities with ``KMeans(n_clusters=2,
n_init=1)``: k-means++ seeding drawn from the ``random_state`` stream
(which draws depend on the sklearn version), then Lloyd iterations stopped
at a small centre-shift tolerance. Here the seeding is replaced by a
deterministic one that plays the same role (the row's minimum and maximum:
k-means++'s second centre is drawn with probability proportional to the
squared distance, so it lands in the far tail) and Lloyd runs to its fixed
point. On bimodal and unimodal loss maps this reaches sklearn's split up
to a few boundary points; the resulting noise masks agree with sklearn's
on more than 99.9 % of pixels in the unit tests' random maps.

Two implementations of the same algorithm:

- the reference (``fit_gmm_1d``, ``gmm_posterior``,
  ``gmm_noise_mask_reference``): readable, float64 on every pixel of the
  padded ``(N, P)`` rows, sorted two-means; tested against sklearn
  parameter by parameter.
- the default ``gmm_noise_mask`` (two orders of magnitude faster on the
  CPU, see benchmarks/RESULTS.md): only the fitted rows' fit values,
  packed into chunks; two-means seeded from a histogram (its fixed point
  found without a loop), then exact Lloyd passes; EM through the log-odds
  (a sigmoid instead of a 2-way logsumexp) in float32 with float64 sums;
  the posterior test solved as a quadratic in x, so that the final mask
  is two comparisons per pixel. Its masks equal the reference's up to
  float32 rounding (tested).
"""
import math
from typing import Any, Callable, Tuple, Union

import numpy as np
import torch
from torch import Tensor
from .precision import fp32_island

#: A tensor, or a numpy array in the CPU fast paths (see ``_on_arrays``).
ArrayLike = Union[Tensor, np.ndarray]
#: sklearn adds 10 * eps of the data dtype to the component masses so that
#: empty components stay finite; its data are float32 here (torch losses).
_MASS_EPS = 10 * torch.finfo(torch.float32).eps


def _check_rows(x: Tensor, valid: Tensor) -> None:
    """Raise a clear error for inputs that are not matching ``(N, P)``."""
    if x.dim() != 2:
        raise ValueError(f'gmm: x must be (N, P), got {tuple(x.shape)}')
    if valid.shape != x.shape or valid.dtype != torch.bool:
        raise ValueError('gmm: valid must be a bool tensor shaped like x '
                         f'{tuple(x.shape)}, got {valid.dtype} '
                         f'{tuple(valid.shape)}')


def two_means_split(x: Tensor, valid: Tensor, max_iter: int = 300) -> Tensor:
    """1-D two-means (Lloyd) of the valid entries of each row.

    Lloyd iterations start from the row's minimum and maximum and run until
    no point changes cluster (or ``max_iter``). In 1-D a cluster assignment
    is a threshold on the sorted values, so each iteration is a
    ``searchsorted`` on the sorted row plus prefix sums: O(log P) per row.

    Args:
        x (Tensor): Values, shape (N, P).
        valid (Tensor): Bool mask of the entries to cluster, shape (N, P).
        max_iter (int): Maximum Lloyd iterations (sklearn's KMeans default).
            Defaults to 300.

    Returns:
        Tensor: Bool (N, P), True for the valid entries of the upper cluster
        (the one with the larger centre); a point half-way between the
        centres goes to the lower one. Rows with fewer than two valid
        entries get no upper cluster.
    """
    _check_rows(x, valid)
    x64 = x.double()
    n = valid.sum(dim=1, keepdim=True)
    last = (n - 1).clamp(min=0)
    # Invalid entries sort to the end, so the first n sorted are the data.
    sorted_x, _ = torch.where(valid, x64, math.inf).sort(dim=1)
    in_data = torch.arange(x.shape[1], device=x.device)[None] < n
    prefix = torch.where(in_data, sorted_x, 0).cumsum(dim=1)
    total = prefix.gather(1, last)
    low, high = sorted_x[:, :1], sorted_x.gather(1, last)
    n_low = torch.full_like(n, -1)
    for it in range(max_iter):
        new_n_low = torch.minimum(
            torch.searchsorted(sorted_x, (low + high) / 2, right=True), n)
        low_sum = prefix.gather(1, (new_n_low - 1).clamp(min=0))
        low_sum = torch.where(new_n_low > 0, low_sum, 0)
        # An empty cluster keeps its centre.
        low = torch.where(new_n_low > 0, low_sum / new_n_low.clamp(min=1), low)
        high = torch.where(new_n_low < n,
                           (total - low_sum) / (n - new_n_low).clamp(min=1),
                           high)
        changed = new_n_low != n_low
        n_low = new_n_low
        # One host sync every few iterations to stop early; the result
        # does not depend on it (converged rows are fixed points).
        if it % 8 == 7 and not bool(changed.any()):
            break
    return valid & (n >= 2) & (x64 > (low + high) / 2)


def _m_step(x: Tensor, resp: Tensor,
            reg_covar: float) -> Tuple[Tensor, Tensor, Tensor]:
    """sklearn's ``_estimate_gaussian_parameters`` for 1-D full covariance.

    Args:
        x (Tensor): float64 values, shape (N, P).
        resp (Tensor): Responsibilities, zero on invalid entries, (N, P, 2).
        reg_covar (float): Added to every variance.

    Returns:
        tuple[Tensor]: Component masses ``nk``, means and variances, each
        (N, 2).
    """
    nk = resp.sum(dim=1) + _MASS_EPS
    means = (resp * x[..., None]).sum(dim=1) / nk
    diff_sq = (x[..., None] - means[:, None]).square()
    variances = (resp * diff_sq).sum(dim=1) / nk + reg_covar
    return nk, means, variances


def _weighted_log_prob(x: Tensor, means: Tensor, variances: Tensor,
                       weights: Tensor) -> Tensor:
    """log(w_k) + log N(x | mu_k, var_k), shape (N, P, 2)."""
    log_gauss = -0.5 * (
        math.log(2 * math.pi) + variances.log()[:, None] +
        (x[..., None] - means[:, None]).square() / variances[:, None])
    return log_gauss + weights.log()[:, None]


def init_gmm_params(x: Tensor,
                    valid: Tensor,
                    reg_covar: float = 5e-4) -> Tuple[Tensor, Tensor, Tensor]:
    """Initial parameters from the two-means split (sklearn ``_initialize``).

    Args:
        x (Tensor): Values, shape (N, P).
        valid (Tensor): Bool mask of the entries to fit, shape (N, P).
        reg_covar (float): Added to the variances. Defaults to 5e-4.

    Returns:
        tuple[Tensor]: float64 ``means``, ``variances``, ``weights``, each
        (N, 2), component 0 = lower cluster.
    """
    _check_rows(x, valid)
    mask = valid.double()
    upper = two_means_split(x, valid).double()
    resp = torch.stack([mask - upper, upper], dim=2)
    nk, means, variances = _m_step(x.double(), resp, reg_covar)
    # sklearn divides by the sample count here, by sum(nk) in the M-step.
    weights = nk / mask.sum(dim=1, keepdim=True).clamp(min=1)
    return means, variances, weights


def em_gmm_1d(x: Tensor,
              valid: Tensor,
              means: Tensor,
              variances: Tensor,
              weights: Tensor,
              max_iter: int = 10,
              tol: float = 1e-2,
              reg_covar: float = 5e-4) -> Tuple[Tensor, Tensor, Tensor]:
    """EM from given parameters, with sklearn's per-row stopping rule.

    Each iteration runs the E-step (its mean log-likelihood is the lower
    bound) and the M-step; a row stops after the iteration in which its
    lower bound changed by less than ``tol``.

    Args:
        x (Tensor): Values, shape (N, P).
        valid (Tensor): Bool mask of the entries to fit, shape (N, P).
        means (Tensor): Initial means, (N, 2).
        variances (Tensor): Initial variances, (N, 2).
        weights (Tensor): Initial weights, (N, 2).
        max_iter (int): Maximum EM iterations. Defaults to 10.
        tol (float): Lower-bound change threshold. Defaults to 1e-2.
        reg_covar (float): Added to the variances. Defaults to 5e-4.

    Returns:
        tuple[Tensor]: float64 ``means``, ``variances``, ``weights``, each
        (N, 2).
    """
    _check_rows(x, valid)
    x64, mask = x.double(), valid.double()
    means, variances, weights = (
        t.double() for t in (means, variances, weights))
    n_valid = mask.sum(dim=1).clamp(min=1)
    lower_bound = x64.new_full((x.shape[0], ), -math.inf)
    done = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
    for _ in range(max_iter):
        log_prob = _weighted_log_prob(x64, means, variances, weights)
        log_norm = log_prob.logsumexp(dim=2)
        new_bound = (log_norm * mask).sum(dim=1) / n_valid
        resp = (log_prob - log_norm[..., None]).exp() * mask[..., None]
        nk, new_means, new_vars = _m_step(x64, resp, reg_covar)
        new_weights = nk / nk.sum(dim=1, keepdim=True)
        # Rows that already converged keep their parameters (sklearn
        # breaks out of its loop); the others take this M-step.
        keep = done[:, None]
        means = torch.where(keep, means, new_means)
        variances = torch.where(keep, variances, new_vars)
        weights = torch.where(keep, weights, new_weights)
        converged = (new_bound - lower_bound).abs() < tol
        lower_bound = torch.where(done, lower_bound, new_bound)
        done = done | converged
    return means, variances, weights


@fp32_island
def fit_gmm_1d(x: Tensor,
               valid: Tensor,
               max_iter: int = 10,
               tol: float = 1e-2,
               reg_covar: float = 5e-4) -> Tuple[Tensor, Tensor, Tensor]:
    """Fit N independent 1-D two-component GMMs on the valid entries.

    Mimics ``GaussianMixture(n_components=2, covariance_type='full',
    init_params='kmeans', n_init=1, max_iter, tol, reg_covar)`` row by row
    (see the module docstring), computing in float64. Rows with fewer than
    two valid entries give finite but meaningless parameters; callers gate
    them (e.g. ``gmm_noise_mask``'s ``min_pixels``).

    Args:
        x (Tensor): Values, shape (N, P).
        valid (Tensor): Bool mask of the entries to fit, shape (N, P).
        max_iter (int): Maximum EM iterations. Defaults to 10.
        tol (float): Convergence threshold on the change of the mean
            log-likelihood. Defaults to 1e-2.
        reg_covar (float): Added to the variances. Defaults to 5e-4.

    Returns:
        tuple[Tensor]: ``means``, ``variances``, ``weights``, each float64
        of shape (N, 2). Component 0 starts as the lower two-means cluster.
    """
    params = init_gmm_params(x, valid, reg_covar)
    return em_gmm_1d(x, valid, *params, max_iter, tol, reg_covar)


@fp32_island
def gmm_posterior(x: Tensor, means: Tensor, variances: Tensor,
                  weights: Tensor) -> Tensor:
    """Posterior of each component for every entry (``predict_proba``).

    Args:
        x (Tensor): Values, shape (N, P).
        means (Tensor): Shape (N, 2).
        variances (Tensor): Shape (N, 2).
        weights (Tensor): Shape (N, 2).

    Returns:
        Tensor: Posterior probabilities, shape (N, P, 2), in the parameters'
        dtype (float64 when they come from ``fit_gmm_1d``).
    """
    if x.dim() != 2 or means.shape != (x.shape[0], 2):
        raise ValueError('gmm_posterior: expected x (N, P) and parameters '
                         f'(N, 2), got {tuple(x.shape)} and '
                         f'{tuple(means.shape)}')
    log_prob = _weighted_log_prob(x.to(means.dtype), means, variances, weights)
    return log_prob.softmax(dim=2)


# ---------------------------------------------------------------------------
# The fast noise mask (the default): the same fit on packed values.
# ---------------------------------------------------------------------------

#: Width of the chunks the fit values are packed into (a multiple of 64).
_CHUNK = 4096
#: Most bins per row of the histogram that seeds the two-means split.
_SPLIT_BINS = 16384


def _check_noise_inputs(losses: Tensor, labels: Tensor,
                        gamma: float) -> None:
    """Raise a clear error for inputs ``gmm_noise_mask`` cannot use."""
    if losses.shape != labels.shape or losses.dim() < 2:
        raise ValueError('gmm_noise_mask: losses and labels must share a '
                         f'(N, ...) shape, got {tuple(losses.shape)} and '
                         f'{tuple(labels.shape)}')
    if not losses.is_floating_point():
        raise ValueError('gmm_noise_mask: losses must be floating point, '
                         f'got {losses.dtype}')
    if not 0 < gamma < 1:
        raise ValueError(
            f'gmm_noise_mask: gamma must be in (0, 1), got {gamma}')


def _on_arrays(fn: Callable[..., Any], *args: Any) -> Tensor:
    """Run an elementwise ``fn`` on numpy views of CPU tensors.

    ``fn`` is written with operators (comparisons, ``&``, ``^``) that mean
    the same for numpy arrays and tensors. On the CPU numpy's comparisons
    are about 5x faster than torch's bool kernels (0.1 ms against 0.5 ms
    for 1.6 M losses on the development machine), so CPU tensors run as
    zero-copy numpy views; on other devices ``fn`` gets the tensors.

    Args:
        fn (Callable): Elementwise function of arrays or tensors.
        *args: Its arguments; tensors among them must share a device.

    Returns:
        Tensor: ``fn``'s result as a tensor (sharing numpy's memory).
    """
    tensors = [a for a in args if isinstance(a, Tensor)]
    if any(t.device.type != 'cpu' for t in tensors):
        return fn(*args)
    arrays = (a.numpy() if isinstance(a, Tensor) else a for a in args)
    return torch.from_numpy(np.asarray(fn(*arrays)))


def _foreground_mask(label: ArrayLike, x: ArrayLike,
                     ignore_index: int) -> ArrayLike:
    """Labels that are neither background (0) nor ``ignore_index``, with a
    finite loss (the non-finite rule, see ``gmm_noise_mask``)."""
    return ((label != 0) & (label != ignore_index) & (x > -math.inf)
            & (x < math.inf))


def _fit_mask(x: ArrayLike, foreground: ArrayLike,
              min_loss: ArrayLike) -> ArrayLike:
    """Foreground values above ``min_loss`` (a 0-d array of x's dtype)."""
    return (x > min_loss) & foreground


def _interval_mask(x: ArrayLike, foreground: ArrayLike, lo: ArrayLike,
                   hi: ArrayLike, outside: ArrayLike) -> ArrayLike:
    """``((lo < x < hi) != outside) & foreground`` with per-row bounds.

    Args:
        x (ArrayLike): Values (N, P).
        foreground (ArrayLike): Bool (N, P).
        lo, hi (ArrayLike): Bounds in x's dtype, (N, ).
        outside (ArrayLike): Bool (N, ).

    Returns:
        ArrayLike: Bool (N, P).
    """
    inside = (x > lo[:, None]) & (x < hi[:, None])
    return (inside ^ outside[:, None]) & foreground


def _select(x: Tensor, keep: Tensor) -> Tensor:
    """``x[keep]`` flattened in row-major order.

    Args:
        x (Tensor): Values, any shape.
        keep (Tensor): Bool, shape of ``x``.

    Returns:
        Tensor: The kept values, shape (K, ).
    """
    if x.device.type != 'cpu':
        return x.masked_select(keep)
    # torch's CPU masked_select (a nonzero, then a gather) takes 3 to 5
    # times numpy's compress on a batch of 448x448 maps.
    kept = np.compress(keep.numpy().ravel(), x.numpy().ravel())
    return torch.from_numpy(kept)


def _chunk_layout(counts: Tensor, width: int) -> Tuple[Tensor, Tensor]:
    """Split rows of ``counts`` values into chunks of ``width``.

    Args:
        counts (Tensor): Values per row, (R, ), all > 0.
        width (int): Chunk width W.

    Returns:
        tuple[Tensor]: The row of each chunk (C, ) and the bool mask of the
        chunks' valid slots (C, W), rows in order, each row's values
        filling its chunks from the start.
    """
    chunks = (counts + width - 1) // width
    row = torch.repeat_interleave(
        torch.arange(counts.numel(), device=counts.device), chunks)
    first = (chunks.cumsum(0) - chunks)[row]
    index = torch.arange(row.numel(), device=counts.device) - first
    filled = (counts[row] - index * width).clamp(max=width)
    slots = torch.arange(width, device=counts.device)
    return row, slots < filled[:, None]


def _pack(x: Tensor, keep: Tensor,
          counts: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """Pack the kept values of the rows into zero-padded chunks.

    Chunks (instead of one padded row per image) keep the padding small
    when the images have very different numbers of fit pixels.

    Args:
        x (Tensor): Values, (N, P).
        keep (Tensor): Bool (N, P), the values to pack, in R rows.
        counts (Tensor): The kept count of each of these rows, (R, ),
            all > 0.

    Returns:
        tuple[Tensor]: ``values`` (C, W), zero after each chunk's values,
        their bool mask ``valid`` (C, W) and the row (0..R-1) of each
        chunk (C, ).
    """
    counts = counts.long()
    # W: a multiple of 64 (see ``_e_step``)
    width = min(_CHUNK, (int(counts.max()) + 63) // 64 * 64)
    row, valid = _chunk_layout(counts, width)
    values = x.new_zeros(valid.shape)
    return values.masked_scatter_(valid, _select(x, keep)), valid, row


def _row_sums(chunk_sums: Tensor, row: Tensor, rows: int) -> Tensor:
    """Add up per-chunk sums (C, ...) into float64 per-row sums (R, ...)."""
    out = chunk_sums.new_zeros((rows, ) + chunk_sums.shape[1:],
                               dtype=torch.float64)
    return out.index_add_(0, row, chunk_sums.double())


def _moments(weights: Tensor, feats: Tensor, row: Tensor,
             rows: int) -> Tensor:
    """Weighted sums ``[sum w, sum w x, sum w x^2]`` of every row.

    One batched matrix product over the chunks; the features are zero on
    padding, so the weights there do not matter.

    Args:
        weights (Tensor): Shape (C, K, W), K weight rows per chunk.
        feats (Tensor): Features from ``_centred_features``, (C, 3, W).
        row (Tensor): Row of each chunk, (C, ).
        rows (int): Number of rows R.

    Returns:
        Tensor: float64 sums, shape (R, K, 3).
    """
    return _row_sums(torch.bmm(weights, feats.transpose(1, 2)), row, rows)


def _centred_features(values: Tensor, valid: Tensor, row: Tensor,
                      rows: int) -> Tuple[Tensor, Tensor]:
    """Features ``[1, x - shift, (x - shift)^2]`` of the packed values.

    Centring each row on its mean keeps the float32 sums of squares well
    conditioned (variances come from ``E[x^2] - E[x]^2``).

    Args:
        values (Tensor): Packed values (C, W), zero where not valid.
        valid (Tensor): Bool (C, W).
        row (Tensor): Row of each chunk, (C, ).
        rows (int): Number of rows R.

    Returns:
        tuple[Tensor]: ``feats`` (C, 3, W) in the values' dtype, all three
        zero on padding, and the float64 ``shift`` (R, ) that was removed
        (the row mean rounded to the values' dtype).
    """
    feats = values.new_empty(values.shape[0], 3, values.shape[1])
    feats[:, 0] = valid
    sums = _row_sums(torch.stack([valid.sum(1), values.sum(1)], 1), row,
                     rows)
    shift = (sums[:, 1] / sums[:, 0]).to(values.dtype)
    torch.sub(values, shift[row, None], out=feats[:, 1]).mul_(feats[:, 0])
    torch.mul(feats[:, 1], feats[:, 1], out=feats[:, 2])
    return feats, shift.double()


def _round_down(value: Tensor, dtype: torch.dtype) -> Tensor:
    """Largest number of ``dtype`` that is <= ``value`` (float64)."""
    rounded = value.to(dtype)
    below = torch.nextafter(rounded, rounded.new_tensor(-math.inf))
    return torch.where(rounded.double() > value, below, rounded)


def _round_up(value: Tensor, dtype: torch.dtype) -> Tensor:
    """Smallest number of ``dtype`` that is >= ``value`` (float64)."""
    rounded = value.to(dtype)
    above = torch.nextafter(rounded, rounded.new_tensor(math.inf))
    return torch.where(rounded.double() < value, above, rounded)


def _row_min_max(centred: Tensor, row: Tensor,
                 rows: int) -> Tuple[Tensor, Tensor]:
    """float64 minimum and maximum (R, ) of each row's centred values.

    The row mean is 0, so the zero padding lies in [min, max].
    """
    low = centred.new_full((rows, ), math.inf)
    high = centred.new_full((rows, ), -math.inf)
    low.scatter_reduce_(0, row, centred.amin(1), 'amin')
    high.scatter_reduce_(0, row, centred.amax(1), 'amax')
    return low.double(), high.double()


def _histogram(centred: Tensor, valid: Tensor, row: Tensor, low: Tensor,
               scale: Tensor, bins: int) -> Tuple[Tensor, Tensor]:
    """float64 cumulative counts and sums of each row's histogram.

    A value v of row r falls in bin ``floor(0.25 + (v - low_r) *
    scale_r)``.

    Args:
        centred (Tensor): Centred values (C, W).
        valid (Tensor): Their mask as 0/1 floats (C, W).
        row (Tensor): Row of each chunk, (C, ).
        low (Tensor): float64 minimum of each row, (R, ).
        scale (Tensor): float64 bins per unit of each row, (R, ), such that
            the maximum falls in the last bin.
        bins (int): Bins per row.

    Returns:
        tuple[Tensor]: Count of the values in the bins up to k (R, bins)
        and their sum (R, bins).
    """
    rows = low.shape[0]
    index = torch.addcmul((0.25 - low * scale)[row, None].to(centred.dtype),
                          centred, scale[row, None].to(centred.dtype))
    # The quarter-bin margins keep index in [0, bins - 1]; the clamp only
    # guards bincount against the unforeseen.
    index = index.int().clamp_(0, bins - 1)
    index = index.add_((row * bins).int()[:, None]).flatten()
    count, total = (torch.bincount(index, w.flatten(), rows * bins)
                    for w in (valid, centred))
    return (count.view(rows, bins).double().cumsum(1),
            total.view(rows, bins).double().cumsum(1))


def _histogram_two_means(feats: Tensor, row: Tensor, rows: int,
                         bins: int = _SPLIT_BINS) -> Tensor:
    """Two-means (Lloyd from the min and max) on a histogram of each row.

    With the bins up to ``k`` as the lower cluster, Lloyd's step gives the
    bin ``g(k)`` of the mid-point of the two cluster means. ``g`` is
    non-decreasing, so Lloyd started from the row's (min + max) / 2 (bin
    ``k0``) stops at the first fixed point in the direction it starts to
    move: the smallest ``k >= k0`` with ``g(k) <= k`` when ``g(k0) >=
    k0``, else the largest ``k <= k0`` with ``g(k) >= k``. All rows and
    bins are evaluated at once, without a host sync.

    Args:
        feats (Tensor): Features from ``_centred_features``, (C, 3, W).
        row (Tensor): Row of each chunk, (C, ).
        rows (int): Number of rows R.
        bins (int): Histogram bins per row. Defaults to 16384.

    Returns:
        Tensor: float64 (R, ) centred split points: Lloyd's up to about a
        bin width.
    """
    low, high = _row_min_max(feats[:, 1], row, rows)
    # A quarter-bin margin at both ends absorbs float32 rounding.
    scale = (bins - 0.5) / (high - low).clamp(min=1e-30)
    cum_n, cum_s = _histogram(feats[:, 1], feats[:, 0], row, low, scale,
                              bins)
    # The last bin holds the maximum: the upper cluster is empty there only
    # (its mean is then 0, a harmless seed).
    n_high = (cum_n[:, -1:] - cum_n).clamp_(min=1)
    mid = (cum_s / cum_n).add_((cum_s[:, -1:] - cum_s).div_(n_high)).mul_(0.5)
    # g(k) >= k <=> mid_k >= left edge of bin k; g(k) <= k <=> mid_k < left
    # edge of bin k + 1.
    k = torch.arange(bins + 1, device=feats.device, dtype=mid.dtype)
    edge = (k - 0.25) / scale[:, None] + low[:, None]
    k0 = bins // 2
    rising = mid[:, k0] >= edge[:, k0]
    stop_up = mid[:, k0:] < edge[:, k0 + 1:]
    stop_up[:, -1] = True  # all values in the lower cluster
    stop_down = (mid[:, :k0 + 1] >= edge[:, :k0 + 1]).flip(1)
    stop_down[:, -1] = True  # bin 0 (the minimum) alone
    # argmax of 0/1 finds the first 1
    best = torch.where(rising, k0 + stop_up.byte().argmax(1),
                       k0 - stop_down.byte().argmax(1))
    return mid.gather(1, best[:, None])[:, 0]


def _two_means_clusters(values: Tensor, feats: Tensor, row: Tensor,
                        shift: Tensor, total: Tensor, mid: Tensor,
                        max_iter: int = 300) -> Tensor:
    """Exact Lloyd iterations from the split point ``mid`` to a fixed point.

    Same rule as ``two_means_split``: the upper cluster is ``x > (low +
    high) / 2``, an empty cluster keeps its centre, and the iterations stop
    when no upper count changes. From the histogram's split this takes a
    few passes.

    Args:
        values (Tensor): Packed values (C, W).
        feats (Tensor): Their features (C, 3, W), centred on ``shift``.
        row (Tensor): Row of each chunk, (C, ).
        shift (Tensor): float64 (R, ).
        total (Tensor): float64 moments of all valid values, (R, 3).
        mid (Tensor): float64 (R, ) first split points, centred.
        max_iter (int): Maximum passes. Defaults to 300.

    Returns:
        Tensor: float64 moments (R, 2, 3) of the final lower and upper
        clusters.
    """
    split = values.new_empty(values.shape[0], 2, values.shape[1])
    upper = split[:, 1:]
    rows, count = shift.shape[0], None
    for _ in range(max_iter):
        # For x in the values' dtype, x > mid <=> x > mid rounded down.
        bound = _round_down(mid + shift, values.dtype)[row, None]
        torch.gt(values, bound, out=upper[:, 0])
        moments = _moments(upper, feats, row, rows)[:, 0]
        if count is not None and torch.equal(moments[:, 0], count):
            break
        count = moments[:, 0]
        # The values are centred: the lower sum is a small difference.
        n_low = total[:, 0] - count
        low = torch.where(n_low > 0, (total[:, 1] - moments[:, 1]) /
                          n_low.clamp(min=1), mid)
        high = torch.where(count > 0, moments[:, 1] / count.clamp(min=1),
                           mid)
        mid = (low + high) / 2
    # Both clusters' own sums for the variances (no large differences).
    torch.le(values, bound, out=split[:, 0])
    return _moments(split, feats, row, rows)


def _m_step_from_moments(stats: Tensor,
                         reg_covar: float) -> Tuple[Tensor, Tensor, Tensor]:
    """sklearn's M-step from moments (same formulas as ``_m_step``).

    Args:
        stats (Tensor): float64 ``[sum r, sum r x, sum r x^2]`` of each
            component's responsibilities, (R, 2, 3).
        reg_covar (float): Added to every variance.

    Returns:
        tuple[Tensor]: Masses ``nk``, means and variances, each (R, 2).
    """
    mass = stats[..., 0] + _MASS_EPS
    means = stats[..., 1] / mass
    # sum r (x - mu)^2, expanded into the moments
    spread = stats[..., 2] - 2 * means * stats[..., 1] + \
        means.square() * stats[..., 0]
    return mass, means, spread / mass + reg_covar


def _log_density_coeffs(means: Tensor, variances: Tensor,
                        weights: Tensor) -> Tensor:
    """``log(w_k N(x | mu_k, var_k)) = c_k + b_k x + a_k x^2``.

    Args:
        means (Tensor): Shape (R, 2).
        variances (Tensor): Shape (R, 2).
        weights (Tensor): Shape (R, 2).

    Returns:
        Tensor: ``[c, b, a]`` per component, shape (R, 2, 3), to be dotted
        with the features ``[1, x, x^2]``.
    """
    a = -0.5 / variances
    b = means / variances
    c = weights.log() - 0.5 * (math.log(2 * math.pi) + variances.log() +
                               means.square() / variances)
    return torch.stack([c, b, a], dim=2)


def _e_step(feats: Tensor, row: Tensor, coeffs: Tensor,
            padding: Tensor) -> Tuple[Tensor, Tensor]:
    """E-step through the log-odds ``d = log p_1(x) - log p_0(x)``.

    ``d`` is a quadratic in x (one matrix product with the features), the
    responsibility of component 1 is ``r = sigmoid(d)`` and ``log p(x) =
    log p_0(x) + softplus(d)``, with ``softplus(d) = relu(d) - log(max(r,
    1 - r))`` (no overflow). As ``max(r, 1 - r)`` is in [0.5, 1], products
    of 64 of them stay normal float32 numbers: one log per 64 values.

    Args:
        feats (Tensor): Features (C, 3, W), W a multiple of 64.
        row (Tensor): Row of each chunk, (C, ).
        coeffs (Tensor): float64 ``_log_density_coeffs``, (R, 2, 3).
        padding (Tensor): Padding slots of each row, (R, ).

    Returns:
        tuple[Tensor]: float64 moments of the two components'
        responsibilities (R, 2, 3) and ``sum softplus(d)`` over the valid
        values (R, ).
    """
    diff = (coeffs[:, 1] - coeffs[:, 0]).to(feats.dtype)[row, None]
    log_odds = torch.bmm(diff, feats)  # (C, 1, W), zero on padding
    resp = feats.new_empty(feats.shape[0], 2, feats.shape[2])
    torch.sigmoid(log_odds, out=resp[:, 1:])
    # Each component's own sums: 1 - r is exact to float32's absolute
    # precision, and no moment is a difference of two large sums.
    torch.sub(1, resp[:, 1:], out=resp[:, :1])
    moments = _moments(resp, feats, row, coeffs.shape[0])
    larger = resp[:, 1].sub_(0.5).abs_().add_(0.5)
    log_larger = larger.view(feats.shape[0], -1, 64).prod(2).log_().sum(1)
    chunk_sum = log_odds.clamp_(min=0).sum((1, 2)) - log_larger
    # Each padding slot has d = 0, softplus(0) = log 2.
    softplus = _row_sums(chunk_sum, row, coeffs.shape[0])
    return moments, softplus - padding * math.log(2)


def _em_from_split(feats: Tensor, row: Tensor, total: Tensor,
                   clusters: Tensor, max_iter: int, tol: float,
                   reg_covar: float) -> Tuple[Tensor, Tensor, Tensor]:
    """``init_gmm_params`` + ``em_gmm_1d`` on the moments of the split.

    Same stopping rule per row (its mean log-likelihood changed by less
    than ``tol``); the loop ends once every row has stopped.

    Args:
        feats (Tensor): Features (C, 3, W).
        row (Tensor): Row of each chunk, (C, ).
        total (Tensor): float64 moments of all valid values, (R, 3).
        clusters (Tensor): float64 moments of the two-means clusters,
            (R, 2, 3).
        max_iter (int): Maximum EM iterations.
        tol (float): Lower-bound change threshold.
        reg_covar (float): Added to the variances.

    Returns:
        tuple[Tensor]: float64 means (in the features' coordinates),
        variances and weights, each (R, 2).
    """
    count = total[:, 0]
    mass, means, variances = _m_step_from_moments(clusters, reg_covar)
    weights = mass / count[:, None]  # sklearn's init divides by n
    bound = means.new_full(count.shape, -math.inf)
    done = torch.zeros_like(count, dtype=torch.bool)
    padding = _row_sums(feats.new_full(row.shape, feats.shape[2]), row,
                        count.numel()) - count
    for _ in range(max_iter):
        coeffs = _log_density_coeffs(means, variances, weights)
        resp, softplus = _e_step(feats, row, coeffs, padding)
        new_bound = ((coeffs[:, 0] * total).sum(1) + softplus) / count
        mass, new_means, new_vars = _m_step_from_moments(resp, reg_covar)
        keep = done[:, None]  # rows that stopped keep their parameters
        means = torch.where(keep, means, new_means)
        variances = torch.where(keep, variances, new_vars)
        weights = torch.where(keep, weights,
                              mass / mass.sum(1, keepdim=True))
        converged = (new_bound - bound).abs() < tol
        bound = torch.where(done, bound, new_bound)
        done = done | converged
        if bool(done.all()):
            break
    return means, variances, weights


def _fit_rows(x: Tensor, fit_on: Tensor, counts: Tensor, max_iter: int,
              tol: float,
              reg_covar: float) -> Tuple[Tensor, Tensor, Tensor]:
    """``fit_gmm_1d`` of the rows of ``x`` that have values to fit.

    Args:
        x (Tensor): Values, (N, P).
        fit_on (Tensor): Bool (N, P), the values to fit, in R rows.
        counts (Tensor): Their count in each of these rows, (R, ), all > 0.
        max_iter (int): Maximum EM iterations.
        tol (float): EM tolerance.
        reg_covar (float): Variance regulariser.

    Returns:
        tuple[Tensor]: float64 means, variances and weights, each (R, 2).
    """
    values, valid, row = _pack(x, fit_on, counts)
    num = counts.numel()
    feats, shift = _centred_features(values, valid, row, num)
    total = _moments(feats[:, :1], feats, row, num)[:, 0]
    # 2 to 4 values per bin in the longest row, 256 to _SPLIT_BINS bins.
    bins = 1 << max(8, min(_SPLIT_BINS.bit_length() - 1,
                           (int(counts.max()) // 4).bit_length()))
    mid = _histogram_two_means(feats, row, num, bins)
    clusters = _two_means_clusters(values, feats, row, shift, total,
                                   mid)
    means, variances, weights = _em_from_split(feats, row, total, clusters,
                                               max_iter, tol, reg_covar)
    return means + shift[:, None], variances, weights


def _noisy_intervals(means: Tensor, variances: Tensor, weights: Tensor,
                     gamma: float,
                     dtype: torch.dtype) -> Tuple[Tensor, Tensor, Tensor]:
    """The test ``posterior of the higher-mean component > gamma`` as
    bounds on x.

    The test is ``q(x) = d(x) - log(gamma / (1 - gamma)) > 0`` with ``d``
    the quadratic log-odds of the noisy against the clean component. Its
    roots are solved in float64 and rounded (outwards or inwards) to
    ``dtype``, so that comparing values of ``dtype`` with them is the
    exact test: ``noisy = (lo < x < hi) != outside``.

    Args:
        means (Tensor): float64 (R, 2).
        variances (Tensor): float64 (R, 2).
        weights (Tensor): float64 (R, 2).
        gamma (float): Posterior threshold, in (0, 1).
        dtype (torch.dtype): dtype of the values to test.

    Returns:
        tuple[Tensor]: ``lo`` and ``hi`` in ``dtype`` and the bool
        ``outside``, each (R, ).
    """
    coeffs = _log_density_coeffs(means, variances, weights)
    noisy = means.argmax(dim=1)[:, None, None].expand(-1, 1, 3)
    quad = (coeffs.gather(1, noisy) - coeffs.gather(1, 1 - noisy))[:, 0]
    c, b, a = quad.unbind(1)
    c = c - math.log(gamma / (1 - gamma))
    disc = b * b - 4 * a * c
    # Stable roots; a = 0 (a linear q) gives one infinite root.
    s = -0.5 * (b + torch.copysign(disc.clamp(min=0).sqrt(), b))
    lo, hi = torch.fmin(s / a, c / s), torch.fmax(s / a, c / s)
    # No real root: q has the sign of a everywhere, and lo > hi makes the
    # interval empty. A constant q: outside of an empty interval (all
    # noisy) or of everything (none).
    constant = (a == 0) & (b == 0)
    empty = (disc < 0) | (constant & (c > 0))
    full = constant & (c <= 0)
    lo = torch.where(empty, math.inf, torch.where(full, -math.inf, lo))
    hi = torch.where(empty, -math.inf, torch.where(full, math.inf, hi))
    outside = a >= 0
    # inside: lo < x < hi; outside: not (lo <= x <= hi), written as strict
    # tests against the neighbouring numbers of dtype.
    lo_in, hi_in = _round_down(lo, dtype), _round_up(hi, dtype)
    inf = lo_in.new_tensor(math.inf)
    lo_out = torch.nextafter(_round_up(lo, dtype), -inf)
    hi_out = torch.nextafter(_round_down(hi, dtype), inf)
    return (torch.where(outside, lo_out, lo_in),
            torch.where(outside, hi_out, hi_in), outside)


@fp32_island
def gmm_noise_mask(losses: Tensor,
                   labels: Tensor,
                   min_loss: float = 0.1,
                   min_pixels: int = 1000,
                   min_mean_gap: float = 1.0,
                   gamma: float = 0.95,
                   ignore_index: int = 255,
                   max_iter: int = 10,
                   tol: float = 1e-2,
                   reg_covar: float = 5e-4) -> Tensor:
    """DuPL's per-image noisy-pixel rule (spec 8), for all rows at once.

    Per row: fit on the foreground pixels (label not 0, not ignore) whose
    loss is > ``min_loss``, only when there are more than ``min_pixels`` of
    them; accept the fit when ``|mu_0 - mu_1| > min_mean_gap``; the noisy
    component is the one with the higher mean; a pixel is noisy when that
    component's posterior is > ``gamma`` and its label is foreground. The
    posterior is evaluated on all pixels, including foreground pixels with
    loss <= ``min_loss`` that were left out of the fit.

    Non-finite losses (NaN, +-inf) are neither fitted nor marked noisy:
    the image's fit and mask are those of its finite pixels, and such a
    pixel keeps its label, so the non-finite value reaches the loss and
    ``FiniteLossHook`` stops training instead of the filter hiding it.

    The fit is ``fit_gmm_1d``'s (two-means from the min and max, then EM
    with sklearn's stopping rule), computed faster (see the module
    docstring); its masks equal ``gmm_noise_mask_reference``'s up to
    float32 rounding. Runs without autograd.

    Args:
        losses (Tensor): Per-pixel losses, (N, P) or (N, H, W), floating
            point. Detached here.
        labels (Tensor): Pseudo labels, same shape as ``losses``.
        min_loss (float): Fit only on losses above this. Defaults to 0.1.
        min_pixels (int): Fit only with more fit pixels than this.
            Defaults to 1000.
        min_mean_gap (float): Minimal |mu_0 - mu_1| (eta). Defaults to 1.0.
        gamma (float): Posterior threshold, in (0, 1). Defaults to 0.95.
        ignore_index (int): Ignored label. Defaults to 255.
        max_iter (int): EM iterations. Defaults to 10.
        tol (float): EM tolerance. Defaults to 1e-2.
        reg_covar (float): Variance regulariser. Defaults to 5e-4.

    Returns:
        Tensor: Bool, same shape as ``labels``, True = noisy.
    """
    _check_noise_inputs(losses, labels, gamma)
    with torch.no_grad():
        x = losses.detach().flatten(1)
        foreground = _on_arrays(_foreground_mask, labels.flatten(1), x,
                                ignore_index)
        fit_on = _on_arrays(_fit_mask, x, foreground, x.new_tensor(min_loss))
        counts = fit_on.sum(dim=1, dtype=torch.int32)
        fitted = counts > min_pixels
        if not bool(fitted.any()):
            return torch.zeros_like(foreground).view(labels.shape)
        # Pack the fitted rows only: clear the others (through the uint8
        # view: a broadcast bool & is about 15x slower on the CPU).
        fit_on.view(torch.uint8).mul_(fitted.view(torch.uint8)[:, None])
        means, variances, weights = _fit_rows(x, fit_on, counts[fitted],
                                              max_iter, tol, reg_covar)
        accept = (means[:, 0] - means[:, 1]).abs() > min_mean_gap
        if not bool(accept.any()):
            return torch.zeros_like(foreground).view(labels.shape)
        # Rows without an accepted fit get an empty interval: never noisy.
        lo = x.new_full(counts.shape, math.inf)
        hi = x.new_full(counts.shape, -math.inf)
        outside = torch.zeros_like(fitted)
        rows = fitted.nonzero()[accept, 0]
        lo[rows], hi[rows], outside[rows] = _noisy_intervals(
            means[accept], variances[accept], weights[accept], gamma,
            x.dtype)
        noisy = _on_arrays(_interval_mask, x, foreground, lo, hi, outside)
    return noisy.view(labels.shape)


@fp32_island
def gmm_noise_mask_reference(losses: Tensor,
                             labels: Tensor,
                             min_loss: float = 0.1,
                             min_pixels: int = 1000,
                             min_mean_gap: float = 1.0,
                             gamma: float = 0.95,
                             ignore_index: int = 255,
                             max_iter: int = 10,
                             tol: float = 1e-2,
                             reg_covar: float = 5e-4) -> Tensor:
    """``gmm_noise_mask`` computed with the reference EM (float64, slow).

    The readable version of spec 8: ``fit_gmm_1d`` on every row, then
    ``gmm_posterior`` on all pixels. The tests check that the fast
    ``gmm_noise_mask`` gives the same masks; use this one to debug it.

    Per row: fit on the foreground pixels (label not 0, not ignore) whose
    loss is > ``min_loss``, only when there are more than ``min_pixels`` of
    them; accept the fit when ``|mu_0 - mu_1| > min_mean_gap``; the noisy
    component is the one with the higher mean; a pixel is noisy when that
    component's posterior is > ``gamma`` and its label is foreground. The
    posterior is evaluated on all pixels, including foreground pixels with
    loss <= ``min_loss`` that were left out of the fit.

    Non-finite losses (NaN, +-inf) are neither fitted nor marked noisy:
    the image's fit and mask are those of its finite pixels, and such a
    pixel keeps its label, so the non-finite value reaches the loss and
    ``FiniteLossHook`` stops training instead of the filter hiding it.

    Args:
        losses (Tensor): Per-pixel losses, (N, P) or (N, H, W). Detached
            here.
        labels (Tensor): Pseudo labels, same shape as ``losses``.
        min_loss (float): Fit only on losses above this. Defaults to 0.1.
        min_pixels (int): Fit only with more fit pixels than this.
            Defaults to 1000.
        min_mean_gap (float): Minimal |mu_0 - mu_1| (eta). Defaults to 1.0.
        gamma (float): Posterior threshold. Defaults to 0.95.
        ignore_index (int): Ignored label. Defaults to 255.
        max_iter (int): EM iterations. Defaults to 10.
        tol (float): EM tolerance. Defaults to 1e-2.
        reg_covar (float): Variance regulariser. Defaults to 5e-4.

    Returns:
        Tensor: Bool, same shape as ``labels``, True = noisy.
    """
    if losses.shape != labels.shape or losses.dim() < 2:
        raise ValueError('gmm_noise_mask_reference: losses and labels '
                         'must share a (N, ...) shape, got '
                         f'{tuple(losses.shape)} and {tuple(labels.shape)}')
    x = losses.detach().flatten(1)
    lab = labels.flatten(1)
    finite = torch.isfinite(x)
    foreground = (lab != 0) & (lab != ignore_index) & finite
    x = torch.where(finite, x, 0.)  # non-finite values out of every sum
    fit_on = foreground & (x > min_loss)
    means, variances, weights = fit_gmm_1d(x, fit_on, max_iter, tol, reg_covar)
    accept = (fit_on.sum(dim=1) > min_pixels) & (
        (means[:, 0] - means[:, 1]).abs() > min_mean_gap)
    noisy_comp = means.argmax(dim=1)
    post = gmm_posterior(x, means, variances, weights)
    index = noisy_comp[:, None, None].expand(-1, x.shape[1], 1)
    post_noisy = post.gather(2, index)[..., 0]
    noisy = accept[:, None] & (post_noisy > gamma) & foreground
    return noisy.view(labels.shape)


def filter_noisy_labels(labels: Tensor,
                        noisy: Tensor,
                        ignore_index: int = 255) -> Tensor:
    """Return a copy of ``labels`` with the noisy pixels set to ignore.

    Args:
        labels (Tensor): Pseudo labels, any shape.
        noisy (Tensor): Bool mask, same shape.
        ignore_index (int): Value written. Defaults to 255.

    Returns:
        Tensor: New labels, same shape and dtype.
    """
    if noisy.shape != labels.shape or noisy.dtype != torch.bool:
        raise ValueError('filter_noisy_labels: noisy must be a bool tensor '
                         f'shaped like labels {tuple(labels.shape)}')
    return labels.masked_fill(noisy, ignore_index)
