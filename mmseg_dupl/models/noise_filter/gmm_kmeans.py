# Copyright (c) OpenMMLab. All rights reserved.
"""sklearn's k-means start of the GMM fit, on packed values (the batched
``gmm_noise_mask``, see ``gmm.py``).

``GaussianMixture(n_components=2, random_state=0)`` (``init_params=
'kmeans'``) starts EM from the labels of ``KMeans(n_clusters=2, n_init=1,
random_state=RandomState(0)).fit(X)``. Its steps, each reproduced here in
the data's dtype (float32 for torch losses) with sklearn's operations:

1. ``X`` is centred on its mean; the Lloyd tolerance is ``mean(var(X)) *
   1e-4``.
2. k-means++: the first centre is ``X[i0]`` with ``i0 =
   RandomState(0).choice(n, p=uniform)``, a function of ``n`` only. The
   squared distances ``D`` to it are computed in float64 (``-2 c x + c^2 +
   x^2``) and rounded to float32; the two candidates for the second centre
   are found by searching ``u_k * sum(D)`` in ``cumsum(D)`` (``u_1``,
   ``u_2``: the stream's next draws), and the one with the smaller
   potential ``sum(min(D, D_candidate))`` wins.
3. Lloyd: label 1 where ``fl(c_1^2 - 2 fl(x c_1)) < fl(c_0^2 - 2 fl(x
   c_0))`` (sklearn's float32 gemm), new centres ``sum * fl(1 / count)``
   (an empty cluster relocated as sklearn does), until the labels repeat
   or the squared centre shifts add up to at most the tolerance; the
   labels of the last centres start EM (cluster k = component k).

The draws are the same for every fit: they are taken once, on the host,
when this module is imported. The per-row arithmetic (first index,
candidates, centres, stopping) runs on the host in the dtype's numpy
arithmetic; every per-value pass runs batched over the packed rows on
their device, with one host round trip of a few numbers per row and Lloyd
iteration. The sums whose float32 rounding sklearn's result depends on
are in ``gmm_kmeans_sums.py`` (bit-exact on CPU tensors; on other devices
the cumulative sum is too, the others are float64 sums). sklearn adds the
Lloyd cluster sums in float32 on its OpenMP threads (their number changes
the rounding); here they are float32 chunk sums added in float64.
"""
from typing import Optional, Tuple

import numpy as np
import torch
from torch import Tensor

from .gmm_kmeans_sums import (Spans, mean_and_tolerance, potentials,
                              row_starts, search_cumsum)
from .gmm_packing import row_sums

#: The draws of a fresh ``RandomState(0)`` in k-means++ with two clusters:
#: one for the first centre (``choice`` with uniform ``p``), then
#: ``n_local_trials = 2 + int(log(2)) = 2`` for the second one's
#: candidates.
KMEANS_DRAWS = np.random.RandomState(0).random_sample(3)
#: KMeans' defaults (GaussianMixture keeps them).
KMEANS_TOL = 1e-4
KMEANS_MAX_ITER = 300
#: Run the Lloyd passes of CPU tensors on numpy views (faster there); with
#: False they take torch's kernels as on other devices (what the tests set
#: to run the device path on the CPU).
NUMPY_VIEWS = True


def _numpy_views(t: Tensor) -> bool:
    return NUMPY_VIEWS and t.device.type == 'cpu'


def first_centre_index(counts: np.ndarray) -> np.ndarray:
    """k-means++'s first centre, ``RandomState(0).choice(n, p=w / w.sum())``
    with unit float32 weights ``w``, for each row's ``n``.

    numpy builds ``cdf = cumsum(p) / cdf[-1]`` in float64, whose k-th entry
    is ``k * p`` over ``n * p``, the float64 rounding of ``k / n`` (the
    partial sums of a float32 ``p`` are exact), and returns the number of
    entries <= the draw ``u``. That is ``floor(u n)`` up to a rounding:
    the entries near it are checked one by one.

    Args:
        counts (np.ndarray): Values per row, (R, ), all > 0.

    Returns:
        np.ndarray: int64 (R, ), the index of the first centre in each row.
    """
    u = KMEANS_DRAWS[0]
    n = counts.astype(np.float64)[:, None]
    guess = np.floor(u * n)
    near = guess + np.arange(-2, 3)
    below = (near >= 1) & (near <= n) & (near / n <= u)
    return (np.maximum(guess[:, 0] - 3, 0) + below.sum(1)).astype(np.int64)


def _squared_distances(x64: Tensor, squares: Tensor, centre: Tensor,
                       dtype: torch.dtype) -> Tensor:
    """sklearn's ``_euclidean_distances(centre, X, squared=True)`` in 1-D:
    ``(-2 c x + c^2) + x^2`` in float64 (float32 values are upcast, their
    products exact), clipped at 0 and rounded to ``dtype``.

    Args:
        x64 (Tensor): float64 values, any shape.
        squares (Tensor): ``x64 * x64``.
        centre (Tensor): float64 centres, broadcastable to ``x64``.
        dtype (torch.dtype): The values' dtype.

    Returns:
        Tensor: Squared distances in ``dtype``, shaped like ``x64``.
    """
    dist = (x64 * (centre * -2)).add_(centre * centre).add_(squares)
    return dist.clamp_(min=0).to(dtype)


def kmeans_plusplus(centred: Tensor, valid: Tensor, row: Tensor,
                    counts: np.ndarray, spans: Optional[Spans]) -> np.ndarray:
    """sklearn's ``_kmeans_plusplus`` with two clusters and unit weights.

    Args:
        centred (Tensor): Centred packed values (C, W), zero on padding.
        valid (Tensor): Bool (C, W).
        row (Tensor): Row of each chunk, (C, ).
        counts (np.ndarray): Values per row, (R, ).
        spans (Spans, optional): Rows' spans for numpy's own sums.

    Returns:
        np.ndarray: Centres (R, 2) in the values' dtype, the first drawn
        first.
    """
    rows, dtype = len(counts), centred.dtype
    flat = centred.view(-1)
    starts = row_starts(counts, centred.shape[1])

    def values_at(index: np.ndarray) -> np.ndarray:
        place = torch.from_numpy(starts[:, None] + index).to(flat.device)
        return flat[place].cpu().numpy()

    def to_chunks(per_row: np.ndarray) -> Tensor:
        return torch.from_numpy(per_row).to(flat.device).double()[row]

    x64 = centred.double()
    squares = x64 * x64
    padding = ~valid
    first = values_at(first_centre_index(counts)[:, None])[:, 0]
    dist = _squared_distances(x64, squares, to_chunks(first)[:, None],
                              dtype).masked_fill_(padding, 0)
    pot = potentials(dist[None], row, rows, spans)[:, 0]
    draws = pot.astype(np.float64)[:, None] * KMEANS_DRAWS[None, 1:]
    found = search_cumsum(dist, valid, row, counts, draws, spans)
    candidates = values_at(found)
    closest = torch.stack([
        torch.minimum(
            dist,
            _squared_distances(x64, squares, to_chunks(c)[:, None], dtype))
        for c in candidates.T
    ]).masked_fill_(padding, 0)
    best = potentials(closest, row, rows, spans).argmin(1)
    second = candidates[np.arange(rows), best]
    return np.stack([first, second], 1)


def _assign(centred: Tensor, row: Tensor, centres: np.ndarray,
            work: Tensor) -> Tensor:
    """Lloyd's labels: 1 where ``fl(c_1^2 - 2 fl(x c_1)) < fl(c_0^2 - 2
    fl(x c_0))``, as sklearn's float32 gemm gives them.

    ``fl(x * (-2 c)) = -2 fl(x c)`` (a power of two scales exactly), so two
    products and two additions per value give sklearn's distances. CPU
    tensors run as numpy views: numpy's elementwise kernels are several
    times faster than torch's there, and it writes the comparison as 0/1
    floats directly.

    Args:
        centred (Tensor): Centred values (C, W), zero on padding.
        row (Tensor): Row of each chunk, (C, ).
        centres (np.ndarray): (R, 2) in the values' dtype.
        work (Tensor): Buffer (2, C, W) of the values' dtype.

    Returns:
        Tensor: ``work[0]`` holding the labels as 0/1, padding included (a
        padded 0 gets label 1 where ``fl(c_1^2) < fl(c_0^2)``).
    """
    terms = torch.from_numpy(np.concatenate(
        [centres * -2, centres * centres], 1)).to(centred.device)[row]
    if _numpy_views(centred):
        x, t, w = centred.numpy(), terms.numpy(), work.numpy()
        for j in (0, 1):
            np.multiply(x, t[:, j:j + 1], out=w[j])
            np.add(w[j], t[:, j + 2:j + 3], out=w[j])
        np.less(w[1], w[0], out=w[0])
        return work[0]
    for j in (0, 1):
        torch.mul(centred, terms[:, j:j + 1], out=work[j])
        work[j].add_(terms[:, j + 2:j + 3])
    return work[0].copy_(torch.lt(work[1], work[0]))


def _label_sums(labels: Tensor, centred: Tensor, row: Tensor,
                rows: int) -> np.ndarray:
    """float64 count and sum of the label-1 values of each row, (R, 2):
    float32 sums per chunk added in float64; the count includes the
    padding slots labelled 1."""
    if _numpy_views(labels):
        lab, x = labels.numpy(), centred.numpy()
        per_chunk = torch.from_numpy(
            np.stack([lab.sum(1), np.einsum('ij,ij->i', lab, x)], 1))
    else:
        per_chunk = torch.stack([labels.sum(1), (labels * centred).sum(1)],
                                1)
    return row_sums(per_chunk, row, rows).cpu().numpy()


def _farthest(centred: Tensor, valid: Tensor, row: Tensor, labels: Tensor,
              centres: np.ndarray,
              rows: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For sklearn's ``_relocate_empty_clusters_dense``: the value of each
    row farthest from its centre, ``(x - c_label)^2`` in the dtype.

    Among equally far values sklearn's ``argpartition`` picks one; here the
    first.

    Args:
        centred (Tensor): Centred values (C, W).
        valid (Tensor): Bool (C, W).
        row (Tensor): Row of each chunk, (C, ).
        labels (Tensor): Bool (C, W).
        centres (np.ndarray): (R, 2).
        rows (np.ndarray): Bool (R, ), the rows to search.

    Returns:
        tuple[np.ndarray]: Per row: the largest squared distance (-1 for
        the rows not searched), the value and its label (0/1).
    """
    own = torch.from_numpy(centres).to(centred.device)[row]
    own = torch.where(labels, own[:, 1:], own[:, :1])
    searched = torch.from_numpy(rows).to(centred.device)[row, None]
    far = torch.where(valid & searched, (centred - own).square_(), -1.)
    count, size = len(rows), far.numel()
    longest = far.new_full((count, ), -1.).scatter_reduce(
        0, row, far.amax(1), 'amax')
    place = torch.arange(size, device=far.device).view(far.shape)
    hits = torch.where(far == longest[row, None], place, size)
    first = torch.full((count, ), size, device=far.device).scatter_reduce(
        0, row, hits.amin(1), 'amin').clamp_(max=size - 1)
    return (longest.cpu().numpy(), centred.view(-1)[first].cpu().numpy(),
            labels.view(-1)[first].long().cpu().numpy())


def _relocate(weight: np.ndarray, sums: np.ndarray, longest: np.ndarray,
              value: np.ndarray, label: np.ndarray) -> None:
    """sklearn's ``_relocate_empty_clusters_dense`` (one empty cluster per
    row), in place on ``weight`` and ``sums`` (R, 2): the farthest value
    leaves its cluster for the empty one, unless every value sits on its
    centre (``longest == 0``)."""
    moved = np.flatnonzero(longest > 0)
    old, new = label[moved], 1 - label[moved]
    sums[moved, old] -= value[moved]
    sums[moved, new] = value[moved]
    weight[moved, new] = 1
    weight[moved, old] -= 1


def _average(sums: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """sklearn's ``_average_centers``: ``sum * alpha``, ``alpha = 1.0 /
    weight`` rounded to the dtype; an empty cluster takes the centre of
    the heavier one as it stands (cluster 1's sum, not yet averaged, for
    an empty cluster 0)."""
    with np.errstate(divide='ignore', invalid='ignore'):
        mean = sums * (1.0 / weight.astype(np.float64)).astype(sums.dtype)
    c0 = np.where(weight[:, 0] > 0, mean[:, 0], sums[:, 1])
    c1 = np.where(weight[:, 1] > 0, mean[:, 1], c0)
    return np.stack([c0, c1], 1)


def _subset(centred: Tensor, valid: Tensor, row: Tensor, rows: int,
            members: np.ndarray) -> Tuple[Tensor, Tensor, Tensor]:
    """The chunks of the rows ``members`` (sorted, of ``rows``), their rows
    renumbered 0..len(members) - 1."""
    local = torch.full((rows, ), -1, dtype=row.dtype, device=row.device)
    local[torch.from_numpy(members).to(row.device)] = torch.arange(
        len(members), dtype=row.dtype, device=row.device)
    index = torch.nonzero(local[row] >= 0)[:, 0]
    return centred[index], valid[index], local[row[index]]


def lloyd_labels(centred: Tensor, valid: Tensor, row: Tensor,
                 counts: np.ndarray, centres: np.ndarray, tol: np.ndarray,
                 max_iter: int = KMEANS_MAX_ITER) -> Tensor:
    """sklearn's ``_kmeans_single_lloyd`` from ``centres``, every row at
    once, each row stopping where sklearn's loop stops.

    sklearn stops on repeated labels (strict convergence) or on squared
    centre shifts adding up to at most ``tol``, and then (unless strict)
    labels once more with the last centres. Repeated labels give the same
    centres again, a shift of 0: so the tolerance test alone stops each
    row at the same iteration, and the labels of its last centres are
    sklearn's in both cases. The passes run on the chunks of the rows
    still iterating (regathered when half of them have stopped).

    Args:
        centred (Tensor): Centred values (C, W), zero on padding.
        valid (Tensor): Bool (C, W).
        row (Tensor): Row of each chunk, (C, ).
        counts (np.ndarray): Values per row, (R, ).
        centres (np.ndarray): First centres (R, 2) in the values' dtype.
        tol (np.ndarray): Each row's tolerance on the squared shifts.
        max_iter (int): Most iterations. Defaults to 300.

    Returns:
        Tensor: Bool (C, W), True where the final label is 1.
    """
    rows, dtype = len(counts), centres.dtype
    total = row_sums(torch.sum(centred, 1, dtype=torch.float64), row,
                     rows).cpu().numpy()
    width = centred.shape[1]
    padding = (counts + width - 1) // width * width - counts
    centres = centres.copy()
    active = np.ones(rows, bool)
    members = np.arange(rows)
    x, v, r = centred, valid, row
    work = centred.new_empty((2, ) + centred.shape)
    for _ in range(max_iter):
        if 2 * active[members].sum() <= len(members):
            members = np.flatnonzero(active)
            x, v, r = _subset(centred, valid, row, rows, members)
            work = x.new_empty((2, ) + x.shape)
        m = members
        labels = _assign(x, r, centres[m], work)
        n1, s1 = _label_sums(labels, x, r, len(m)).T
        # padded zeros sit at distance c_j^2 (see ``_assign``)
        n1 -= padding[m] * (centres[m, 1] * centres[m, 1] <
                            centres[m, 0] * centres[m, 0])
        weight = np.stack([counts[m] - n1, n1], 1).astype(dtype)
        sums = np.stack([total[m] - s1, s1], 1).astype(dtype)
        empty = (weight == 0).any(1) & active[m]
        if empty.any():
            _relocate(weight, sums, *_farthest(x, v, r, labels.bool(),
                                               centres[m], empty))
        new = _average(sums, weight)
        shift = np.sqrt(np.square(new - centres[m]))
        shifted = shift[:, 0] * shift[:, 0] + shift[:, 1] * shift[:, 1]
        centres[m] = np.where(active[m, None], new, centres[m])
        active[m] &= ~(shifted <= tol[m])
        if not active.any():
            break
    work = centred.new_empty((2, ) + centred.shape)
    return _assign(centred, row, centres, work).bool().logical_and_(valid)


def kmeans_labels(values: Tensor,
                  valid: Tensor,
                  row: Tensor,
                  counts: Tensor,
                  numpy_sums: Optional[bool] = None) -> Tensor:
    """``KMeans(n_clusters=2, n_init=1, random_state=0).fit(x).labels_`` of
    every packed row, as GaussianMixture's start calls it.

    Args:
        values (Tensor): Packed values (C, W), zero on padding, float32 or
            float64 (sklearn fits float32 data in float32).
        valid (Tensor): Bool (C, W).
        row (Tensor): Row of each chunk, (C, ).
        counts (Tensor): Values per row, (R, ), all > 0.
        numpy_sums (bool, optional): Make the order-dependent sums with
            numpy's own calls (CPU tensors only; bit-exact) or on the
            device (``gmm_kmeans_sums.py``). Defaults to numpy's on the
            CPU.

    Returns:
        Tensor: Bool (C, W), True where the label is 1.
    """
    on_cpu = values.device.type == 'cpu'
    if numpy_sums and not on_cpu:
        raise ValueError('kmeans_labels: numpy_sums=True needs CPU tensors, '
                         f'got {values.device}')
    counts = counts.cpu().numpy().astype(np.int64)
    spans = None
    if on_cpu and numpy_sums is not False:
        spans = list(zip(row_starts(counts, values.shape[1]).tolist(),
                         counts.tolist()))
    mean, tol = mean_and_tolerance(values, valid, row, counts, KMEANS_TOL,
                                   spans)
    shift = torch.from_numpy(mean).to(values.device)[row, None]
    centred = (values - shift).masked_fill_(~valid, 0)
    centres = kmeans_plusplus(centred, valid, row, counts, spans)
    return lloyd_labels(centred, valid, row, counts, centres, tol)
