# Copyright (c) OpenMMLab. All rights reserved.
"""The sums of sklearn's k-means start whose rounding decides it (the
batched ``gmm_noise_mask``, see ``gmm.py`` and ``gmm_kmeans.py``).

sklearn adds these up in the data's dtype (float32 for torch losses), each
in its own order:

- the mean and the variance of each image's values, which centre the data
  and set the Lloyd tolerance (``X.mean(axis=0)``, ``np.var``: numpy's
  pairwise sums, divided in float64);
- the k-means++ potentials ``closest_dist_sq @ sample_weight`` (BLAS dot
  products);
- the cumulative sum that the k-means++ draws are searched in
  (``np.cumsum``: sequential float32 additions, whose rounding moves the
  searched boundaries by about ``sqrt(n)`` float32 steps of the sum).

On CPU tensors the functions here make numpy's own calls, with sklearn's
shapes, on zero-copy views of each packed row: bit for bit sklearn's sums
(same numpy, same BLAS), at a few numpy calls per row. On other devices
the cumulative sum is reproduced bit for bit by a parallel scan, binade by
binade (``_float32_scan_search``: the one whose rounding moves k-means++
draws), and the mean, variance and potentials are float64 sums rounded to
the values' dtype: sklearn's up to its float32 rounding (pairwise and BLAS
orders), which rarely decides anything (docs/algorithm.md §8).

A row's values are contiguous in the flattened packed chunks (they fill
their chunks from the start), so a row is the span ``flat[start:start +
n]``. Per-row results come back as host (numpy) arrays: the k-means start
does its per-row arithmetic on the host.
"""
from typing import List, Optional, Tuple

import numpy as np
import torch
from torch import Tensor

from .gmm_packing import row_sums

#: Values of each row that ``_float32_scan_search`` adds one at a time
#: before it scans binade by binade.
_SCAN_HEAD = 32
#: Each row's ``(start, n)`` in the flattened packed values.
Spans = List[Tuple[int, int]]


def row_starts(counts: np.ndarray, width: int) -> np.ndarray:
    """Flat offset of each row's first value in the packed chunks.

    Args:
        counts (np.ndarray): Values per row, (R, ), all > 0.
        width (int): Chunk width W.

    Returns:
        np.ndarray: int64 (R, ).
    """
    chunks = (counts.astype(np.int64) + width - 1) // width
    return (np.cumsum(chunks) - chunks) * width


def _host(t: Tensor) -> np.ndarray:
    """A host numpy copy (a view for CPU tensors)."""
    return t.cpu().numpy()


def mean_and_tolerance(values: Tensor, valid: Tensor, row: Tensor,
                       counts: np.ndarray, tol: float,
                       spans: Optional[Spans]
                       ) -> Tuple[np.ndarray, np.ndarray]:
    """sklearn's ``X.mean(axis=0)`` and ``_tolerance(X, tol)`` per row.

    ``_tolerance`` is ``np.mean(np.var(X, axis=0)) * tol``; for float32
    data the product is a float32 one (numpy 2 keeps the array's dtype).

    Args:
        values (Tensor): Packed values (C, W), float32 or float64.
        valid (Tensor): Bool (C, W).
        row (Tensor): Row of each chunk, (C, ).
        counts (np.ndarray): Values per row, (R, ).
        tol (float): KMeans' relative tolerance.
        spans (Spans, optional): Rows' spans for numpy's own sums.

    Returns:
        tuple[np.ndarray]: Mean and tolerance (R, ), in the values' dtype.
    """
    if spans is not None:
        flat = values.numpy().reshape(-1)
        means, tols = [], []
        for start, n in spans:
            x = flat[start:start + n].reshape(-1, 1)
            means.append(x.mean(axis=0)[0])
            tols.append(np.mean(np.var(x, axis=0)) * tol)
        return np.array(means, flat.dtype), np.array(tols, flat.dtype)
    dtype, rows = values.dtype, len(counts)
    n = torch.from_numpy(counts).to(values.device).double()
    # numpy: a sum in the dtype, then a float64 division rounded back.
    total = row_sums(values.double().sum(1), row, rows).to(dtype)
    mean = (total.double() / n).to(dtype)
    dev = (values - mean[row, None]).masked_fill_(~valid, 0)
    squares = row_sums(dev.mul_(dev).double().sum(1), row, rows).to(dtype)
    var = _host((squares.double() / n).to(dtype))
    return _host(mean), var * np.array(tol, var.dtype)


def potentials(dist: Tensor, row: Tensor, rows: int,
               spans: Optional[Spans]) -> np.ndarray:
    """k-means++ potentials: each row's sum of squared distances.

    sklearn: ``closest_dist_sq @ sample_weight`` ((1, n) @ (n, )) for the
    first centre and ``distance_to_candidates @ sample_weight.reshape(-1,
    1)`` ((K, n) @ (n, 1)) for the K candidates, unit sample weights.

    Args:
        dist (Tensor): Squared distances (K, C, W), zero on padding.
        row (Tensor): Row of each chunk, (C, ).
        rows (int): Number of rows R.
        spans (Spans, optional): Rows' spans for numpy's own products.

    Returns:
        np.ndarray: (R, K) in the distances' dtype.
    """
    if spans is None:
        sums = row_sums(dist.double().sum(2).T, row, rows)
        return _host(sums.to(dist.dtype))
    flat = dist.numpy().reshape(dist.shape[0], -1)
    out = np.empty((rows, dist.shape[0]), flat.dtype)
    for r, (start, n) in enumerate(spans):
        ones = np.ones(n, flat.dtype)
        if dist.shape[0] == 1:
            out[r] = flat[:, start:start + n] @ ones
        else:
            part = np.ascontiguousarray(flat[:, start:start + n])
            out[r] = (part @ ones.reshape(-1, 1))[:, 0]
    return out


def _float32_scan_search(flat: Tensor, inside: Tensor, row_of: Tensor,
                         starts: Tensor, counts: Tensor,
                         draws: Tensor) -> Tensor:
    """``searchsorted(np.cumsum(x), d)`` for float32 rows, the sequential
    float32 cumulative sum reproduced bit for bit without a sequential
    loop over the values.

    While the running sum ``s`` stays in one binade ``[2^e, 2^(e+1))``, the
    float32 numbers there are the multiples of ``u = 2^(e-23)``, so ``fl(s
    + a)`` is ``s`` plus ``a`` rounded to a multiple of ``u`` (to nearest;
    a tie goes to the even multiple, which depends on the sum so far: after
    a tie the multiple is even, so the parity is a sum since the last
    tie). One phase adds up every row's values from its position with its
    binade's ``u`` (exact integer cumsums), finds the first sum that
    leaves the binade, recomputes that one addition in float32, and moves
    on: one phase per binade the sums pass through (about ``log2(n)``
    after the first values). The values are >= 0, so the sums grow.

    Args:
        flat (Tensor): float32 values >= 0, each row contiguous.
        inside (Tensor): Bool, shaped like ``flat``: the rows' values.
        row_of (Tensor): int64, shaped like ``flat``: their rows (any
            valid row elsewhere).
        starts (Tensor): int64 (R, ), each row's offset in ``flat``.
        counts (Tensor): int64 (R, ), its length (> 0).
        draws (Tensor): float64 (R, K), the values to search.

    Returns:
        Tensor: int64 (R, K), the number of sums below each draw (side
        'left'), row-relative.
    """
    device, top = flat.device, 1 << 24
    rows, size = counts.numel(), flat.numel()
    place = torch.arange(size, device=device)
    ends = starts + counts
    a64 = flat.double()
    found = torch.full_like(draws, -1, dtype=torch.long)
    found = torch.where(draws <= 0, starts[:, None], found)
    # The first values one addition at a time (the early sums change
    # binade at almost every value).
    s = flat.new_zeros(rows)
    p = starts - 1
    for j in range(min(_SCAN_HEAD, int(counts.max()))):
        more = j < counts
        at = (starts + j).clamp(max=size - 1)
        s = torch.where(more, s + flat[at], s)
        hit = (found < 0) & more[:, None] & (s.double()[:, None] >= draws)
        found = torch.where(hit, at[:, None], found)
        p = torch.where(more, at, p)
    # A sum still 0 stays exact up to the next value > 0.
    zero = (s == 0) & (p < ends - 1)
    if bool(zero.any()):
        first = torch.where(inside & (flat > 0) & (place > p[row_of]) &
                            zero[row_of], place, size)
        first = torch.full((rows, ), size, device=device).scatter_reduce(
            0, row_of, first, 'amin')
        jump = zero & (first < ends)
        s = torch.where(jump, flat[first.clamp(max=size - 1)], s)
        hit = (found < 0) & jump[:, None] & (s.double()[:, None] >= draws)
        found = torch.where(hit, first[:, None], found)
        p = torch.where(jump, first, torch.where(zero, ends - 1, p))
    live = s > 0
    while True:
        active = live & (found < 0).any(1) & (p < ends - 1)
        if not bool(active.any()):
            break
        exponent = torch.frexp(s)[1]
        u = torch.ldexp(torch.ones_like(a64[:rows]), exponent - 24)
        k0 = s.double() / u
        lo = p + 1
        seg = inside & active[row_of] & (place >= lo[row_of])
        # values in units of u; integers stay exact in float64
        ratio = torch.where(seg, a64 / u[row_of], 0.).clamp_(max=2. * top)
        q = ratio.floor()
        tie = seg & (ratio - q == 0.5)
        fixed = q + (ratio - q > 0.5)
        cum = fixed.cumsum(0)
        before = cum[p]
        # parity of the multiple before each tie: even after the last tie
        last = torch.where(tie, place, -1).cummax(0)[0]
        last = torch.cat([last.new_full((1, ), -1), last[:-1]])
        since = last >= lo[row_of]
        base = torch.where(since, cum[last.clamp(min=0)],
                           (before - k0)[row_of])
        up = tie & (torch.remainder(cum - fixed - base + q, 2) == 1)
        ups = up.double().cumsum(0)
        k = (k0 - before - ups[p])[row_of] + cum + ups
        stay = seg & (k < top)
        count = torch.zeros(rows, dtype=torch.long, device=device)
        count.index_add_(0, row_of, stay.long())
        sums = k * u[row_of]
        below = torch.zeros_like(found)
        below.index_add_(0, row_of, (stay[:, None] & (
            sums[:, None] < draws[row_of])).long())
        inner = (found < 0) & active[:, None] & (below < count[:, None])
        found = torch.where(inner, lo[:, None] + below, found)
        # the addition that leaves the binade, in float32
        out = lo + count
        leaves = active & (out < ends)
        prev = torch.where(count > 0,
                           (k[(out - 1).clamp(max=size - 1)] * u).float(), s)
        s_out = prev + flat[out.clamp(max=size - 1)]
        hit = (found < 0) & leaves[:, None] & (
            s_out.double()[:, None] >= draws)
        found = torch.where(hit, out[:, None], found)
        p = torch.where(leaves, out, torch.where(active, ends - 1, p))
        s = torch.where(leaves, s_out, s)
    found = torch.where(found < 0, ends[:, None], found)
    return found - starts[:, None]


def search_cumsum(dist: Tensor, valid: Tensor, row: Tensor,
                  counts: np.ndarray, draws: np.ndarray,
                  spans: Optional[Spans]) -> np.ndarray:
    """``np.searchsorted(np.cumsum(dist_row), draws_row)`` per row, clipped
    to the row (sklearn's k-means++ candidates).

    Without ``spans`` (other devices) the float32 cumulative sum is
    reproduced exactly by ``_float32_scan_search``; float64 values (not
    what the reference fits) are searched in torch's float64 cumsum.

    Args:
        dist (Tensor): Squared distances (C, W), zero on padding.
        valid (Tensor): Bool (C, W).
        row (Tensor): Row of each chunk, (C, ).
        counts (np.ndarray): Values per row, (R, ).
        draws (np.ndarray): float64 (R, K) values to search.
        spans (Spans, optional): Rows' spans for numpy's own cumsum.

    Returns:
        np.ndarray: int64 (R, K) indices within the rows.
    """
    last = counts.astype(np.int64)[:, None] - 1
    if spans is not None:
        flat = dist.numpy().reshape(-1)
        found = np.stack([
            np.searchsorted(np.cumsum(flat[s:s + n]), d)
            for (s, n), d in zip(spans, draws)
        ])
        return np.minimum(found, last)
    device = dist.device
    starts = torch.from_numpy(row_starts(counts, dist.shape[1])).to(device)
    lengths = torch.from_numpy(counts.astype(np.int64)).to(device)
    limits = torch.from_numpy(draws).to(device)
    if dist.dtype == torch.float32:
        row_of = row[:, None].expand(dist.shape).reshape(-1)
        found = _float32_scan_search(dist.reshape(-1), valid.reshape(-1),
                                     row_of, starts, lengths, limits)
        return np.minimum(_host(found), last)
    cum = torch.cat([dist.reshape(-1)[int(s):int(s) + int(n)].cumsum(0)
                     for s, n in zip(starts.tolist(), counts.tolist())])
    row_of = torch.repeat_interleave(
        torch.arange(len(counts), device=device), lengths)
    below = torch.zeros_like(limits, dtype=torch.long)
    below.index_add_(0, row_of, (cum[:, None] < limits[row_of]).long())
    return np.minimum(_host(below), last)
