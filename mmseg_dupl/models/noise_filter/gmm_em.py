# Copyright (c) OpenMMLab. All rights reserved.
"""EM of the 1-D two-component GMMs on the moments of packed values
(the batched ``gmm_noise_mask``, see ``gmm.py``); sklearn's rules."""
import math
from typing import Tuple

import torch
from torch import Tensor
from .gmm_kmeans import kmeans_labels
from .gmm_packing import (centred_features, pack_fit_values, row_sums,
                          weighted_moments)
from .gmm_two_means import (SPLIT_BINS, histogram_two_means,
                            two_means_clusters)

#: sklearn adds 10 * eps of the data dtype to the component masses so that
#: empty components stay finite; its data are float32 here (torch losses).
MASS_EPS = 10 * torch.finfo(torch.float32).eps


def _m_step_from_moments(stats: Tensor, reg_covar: float,
                         shift: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """sklearn's M-step from moments (same formulas as ``_m_step``).

    sklearn's mean ``sum r x / (sum r + eps)`` is pulled towards 0 by the
    ``eps`` mass (to exactly 0 for an empty component); with ``x = x' +
    shift`` that is ``(sum r x' - shift eps) / (sum r + eps)`` in the
    centred coordinates.

    Args:
        stats (Tensor): float64 ``[sum r, sum r x', sum r x'^2]`` of each
            component's responsibilities, (R, 2, 3), on the centred
            values ``x'``.
        reg_covar (float): Added to every variance.
        shift (Tensor): float64 (R, ), what the values were centred by.

    Returns:
        tuple[Tensor]: Masses ``nk``, centred means and variances, each
        (R, 2).
    """
    mass = stats[..., 0] + MASS_EPS
    means = (stats[..., 1] - shift[:, None] * MASS_EPS) / mass
    # sum r (x - mu)^2, expanded into the moments
    spread = stats[..., 2] - 2 * means * stats[..., 1] + \
        means.square() * stats[..., 0]
    return mass, means, spread / mass + reg_covar


def log_density_coeffs(means: Tensor, variances: Tensor,
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
        coeffs (Tensor): float64 ``log_density_coeffs``, (R, 2, 3).
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
    moments = weighted_moments(resp, feats, row, coeffs.shape[0])
    larger = resp[:, 1].sub_(0.5).abs_().add_(0.5)
    log_larger = larger.view(feats.shape[0], -1, 64).prod(2).log_().sum(1)
    chunk_sum = log_odds.clamp_(min=0).sum((1, 2)) - log_larger
    # Each padding slot has d = 0, softplus(0) = log 2.
    softplus = row_sums(chunk_sum, row, coeffs.shape[0])
    return moments, softplus - padding * math.log(2)


def _em_from_split(feats: Tensor, row: Tensor, total: Tensor, shift: Tensor,
                   clusters: Tensor, max_iter: int, tol: float,
                   reg_covar: float) -> Tuple[Tensor, Tensor, Tensor]:
    """``init_gmm_params`` + ``em_gmm_1d`` on the moments of the split.

    Same stopping rule per row (its mean log-likelihood changed by less
    than ``tol``); the loop ends once every row has stopped.

    Args:
        feats (Tensor): Features (C, 3, W).
        row (Tensor): Row of each chunk, (C, ).
        total (Tensor): float64 moments of all valid values, (R, 3).
        shift (Tensor): float64 (R, ), the centring of the features.
        clusters (Tensor): float64 moments of the start's two clusters,
            (R, 2, 3).
        max_iter (int): Maximum EM iterations.
        tol (float): Lower-bound change threshold.
        reg_covar (float): Added to the variances.

    Returns:
        tuple[Tensor]: float64 means (in the features' coordinates),
        variances and weights, each (R, 2).
    """
    count = total[:, 0]
    mass, means, variances = _m_step_from_moments(clusters, reg_covar, shift)
    weights = mass / count[:, None]  # sklearn's init divides by n
    bound = means.new_full(count.shape, -math.inf)
    done = torch.zeros_like(count, dtype=torch.bool)
    padding = row_sums(feats.new_full(row.shape, feats.shape[2]), row,
                        count.numel()) - count
    for _ in range(max_iter):
        coeffs = log_density_coeffs(means, variances, weights)
        resp, softplus = _e_step(feats, row, coeffs, padding)
        new_bound = ((coeffs[:, 0] * total).sum(1) + softplus) / count
        mass, new_means, new_vars = _m_step_from_moments(
            resp, reg_covar, shift)
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


def _start_clusters(values: Tensor, valid: Tensor, row: Tensor,
                    counts: Tensor, feats: Tensor, shift: Tensor,
                    total: Tensor, init: str) -> Tensor:
    """float64 moments (R, 2, 3) of the two clusters that start EM.

    ``'kmeans'``: sklearn's KMeans labels (``gmm_kmeans.py``), cluster k =
    label k. ``'two_means'``: the lower and upper two-means clusters from
    the row's min and max (``gmm_two_means.py``).
    """
    rows = counts.numel()
    if init == 'kmeans':
        upper = kmeans_labels(values, valid, row, counts)
        split = torch.stack([valid & ~upper, upper], 1).to(feats.dtype)
        return weighted_moments(split, feats, row, rows)
    # 2 to 4 values per bin in the longest row, 256 to SPLIT_BINS bins.
    bins = 1 << max(8, min(SPLIT_BINS.bit_length() - 1,
                           (int(counts.max()) // 4).bit_length()))
    mid = histogram_two_means(feats, row, rows, bins)
    return two_means_clusters(values, feats, row, shift, total, mid)


def fit_gmm_rows(x: Tensor,
                 fit_on: Tensor,
                 counts: Tensor,
                 max_iter: int,
                 tol: float,
                 reg_covar: float,
                 init: str = 'kmeans') -> Tuple[Tensor, Tensor, Tensor]:
    """sklearn's ``GaussianMixture.fit`` of the rows of ``x`` that have
    values to fit (``fit_gmm_1d`` of the test reference).

    Args:
        x (Tensor): Values, (N, P).
        fit_on (Tensor): Bool (N, P), the values to fit, in R rows.
        counts (Tensor): Their count in each of these rows, (R, ), all > 0.
        max_iter (int): Maximum EM iterations.
        tol (float): EM tolerance.
        reg_covar (float): Variance regulariser.
        init (str): The start, ``'kmeans'`` (sklearn's) or ``'two_means'``
            (see ``gmm_noise_mask``). Defaults to ``'kmeans'``.

    Returns:
        tuple[Tensor]: float64 means, variances and weights, each (R, 2).
    """
    values, valid, row = pack_fit_values(x, fit_on, counts)
    num = counts.numel()
    feats, shift = centred_features(values, valid, row, num)
    total = weighted_moments(feats[:, :1], feats, row, num)[:, 0]
    clusters = _start_clusters(values, valid, row, counts, feats, shift,
                               total, init)
    means, variances, weights = _em_from_split(feats, row, total, shift,
                                               clusters, max_iter, tol,
                                               reg_covar)
    return means + shift[:, None], variances, weights
