# Copyright (c) OpenMMLab. All rights reserved.
"""The two-means start of the GMM fit (``init='two_means'``: faster than
sklearn's k-means start, not the reference's masks), on packed values (the
batched ``gmm_noise_mask``, see ``gmm.py``)."""
import math
from typing import Tuple

import torch
from torch import Tensor
from .gmm_packing import weighted_moments

#: Most bins per row of the histogram that seeds the two-means split.
SPLIT_BINS = 16384


def round_down(value: Tensor, dtype: torch.dtype) -> Tensor:
    """Largest number of ``dtype`` that is <= ``value`` (float64)."""
    rounded = value.to(dtype)
    below = torch.nextafter(rounded, rounded.new_tensor(-math.inf))
    return torch.where(rounded.double() > value, below, rounded)


def round_up(value: Tensor, dtype: torch.dtype) -> Tensor:
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


def histogram_two_means(feats: Tensor, row: Tensor, rows: int,
                         bins: int = SPLIT_BINS) -> Tensor:
    """Two-means (Lloyd from the min and max) on a histogram of each row.

    With the bins up to ``k`` as the lower cluster, Lloyd's step gives the
    bin ``g(k)`` of the mid-point of the two cluster means. ``g`` is
    non-decreasing, so Lloyd started from the row's (min + max) / 2 (bin
    ``k0``) stops at the first fixed point in the direction it starts to
    move: the smallest ``k >= k0`` with ``g(k) <= k`` when ``g(k0) >=
    k0``, else the largest ``k <= k0`` with ``g(k) >= k``. All rows and
    bins are evaluated at once, without a host sync.

    Args:
        feats (Tensor): Features from ``centred_features``, (C, 3, W).
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


def two_means_clusters(values: Tensor, feats: Tensor, row: Tensor,
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
        bound = round_down(mid + shift, values.dtype)[row, None]
        torch.gt(values, bound, out=upper[:, 0])
        moments = weighted_moments(upper, feats, row, rows)[:, 0]
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
    return weighted_moments(split, feats, row, rows)
