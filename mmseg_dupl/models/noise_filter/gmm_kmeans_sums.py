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
they are float64 sums on the device rounded to the values' dtype:
sklearn's up to its float32 rounding, which now and then moves a k-means++
draw to a neighbouring value (docs/algorithm.md §8 counts how often).

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
    dev = (values - mean[row, None]).mul_(valid)
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


def search_cumsum(dist: Tensor, valid: Tensor, row: Tensor,
                  counts: np.ndarray, draws: np.ndarray,
                  spans: Optional[Spans]) -> np.ndarray:
    """``np.searchsorted(np.cumsum(dist_row), draws_row)`` per row, clipped
    to the row (sklearn's k-means++ candidates).

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
    rows = len(counts)
    within = dist.double().cumsum(1)
    # add the sums of the row's earlier chunks (chunks are in row order)
    totals = within[:, -1]
    before = totals.cumsum(0) - totals
    first = torch.full((rows, ), row.numel(), device=dist.device)
    first = first.scatter_reduce(
        0, row, torch.arange(row.numel(), device=dist.device), 'amin')
    within += (before - before[first][row])[:, None]
    limits = torch.from_numpy(draws).to(dist.device)[row]
    below = (within[:, None] < limits[:, :, None]) & valid[:, None]
    found = _host(row_sums(below.sum(2), row, rows)).astype(np.int64)
    return np.minimum(found, last)
