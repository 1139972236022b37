# Copyright (c) OpenMMLab. All rights reserved.
"""The readable float64 reference of DuPL's GMM noise filter (algorithm.md §8).

Not product code: the tests check it against sklearn parameter by parameter
and check the package's fast ``gmm_noise_mask`` against it;
``benchmarks/bench_gmm.py`` times it. Every row of an ``(N, P)`` tensor is
an independent 1-D problem: sklearn's own ``KMeans`` start (``init=
'kmeans'``, what ``GaussianMixture`` runs) or the sorted two-means from the
row's min and max (``init='two_means'``), then sklearn's EM in float64 (see
``mmseg_dupl/models/noise_filter/gmm.py``).
"""
import math
import warnings
from typing import Tuple

import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from torch import Tensor

from mmseg_dupl.models.noise_filter.gmm_em import MASS_EPS
from mmseg_dupl.models.utils.precision import fp32_island


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


def kmeans_split(x: Tensor, valid: Tensor) -> Tensor:
    """GaussianMixture's start, by sklearn itself: the labels of
    ``KMeans(n_clusters=2, n_init=1, random_state=0)`` fitted on each row's
    valid entries (in row order, in x's dtype: float32 stays float32).

    Args:
        x (Tensor): Values, shape (N, P).
        valid (Tensor): Bool mask of the entries to cluster, shape (N, P).

    Returns:
        Tensor: Bool (N, P), True for the valid entries with label 1. Rows
        with fewer than two valid entries (sklearn refuses them) get none.
    """
    _check_rows(x, valid)
    upper = torch.zeros_like(valid)
    for i in range(x.shape[0]):
        values = x[i][valid[i]].cpu().numpy()
        if values.size < 2:
            continue
        with warnings.catch_warnings():
            # 'fewer distinct clusters than n_clusters' on constant rows
            warnings.simplefilter('ignore', ConvergenceWarning)
            labels = KMeans(
                n_clusters=2, n_init=1,
                random_state=0).fit(values[:, None]).labels_
        upper[i, valid[i]] = torch.from_numpy(labels == 1).to(valid.device)
    return upper


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
    nk = resp.sum(dim=1) + MASS_EPS
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
                    reg_covar: float = 5e-4,
                    init: str = 'kmeans') -> Tuple[Tensor, Tensor, Tensor]:
    """Initial parameters from a hard split (sklearn ``_initialize``).

    Args:
        x (Tensor): Values, shape (N, P).
        valid (Tensor): Bool mask of the entries to fit, shape (N, P).
        reg_covar (float): Added to the variances. Defaults to 5e-4.
        init (str): ``'kmeans'`` (``kmeans_split``, sklearn's) or
            ``'two_means'`` (``two_means_split``). Defaults to
            ``'kmeans'``.

    Returns:
        tuple[Tensor]: float64 ``means``, ``variances``, ``weights``, each
        (N, 2), component k = cluster (label) k; for ``'two_means'``
        component 0 is the lower cluster.
    """
    _check_rows(x, valid)
    mask = valid.double()
    split = kmeans_split if init == 'kmeans' else two_means_split
    upper = split(x, valid).double()
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
               reg_covar: float = 5e-4,
               init: str = 'kmeans') -> Tuple[Tensor, Tensor, Tensor]:
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
        init (str): The start (see ``init_gmm_params``). Defaults to
            ``'kmeans'``.

    Returns:
        tuple[Tensor]: ``means``, ``variances``, ``weights``, each float64
        of shape (N, 2). Component k starts as cluster k of the start.
    """
    params = init_gmm_params(x, valid, reg_covar, init)
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
                             reg_covar: float = 5e-4,
                             init: str = 'kmeans') -> Tensor:
    """``gmm_noise_mask`` computed with the reference EM (float64, slow).

    The readable version of algorithm.md §8: ``fit_gmm_1d`` on every row, then
    ``gmm_posterior`` on all pixels. The tests check that the fast
    ``gmm_noise_mask`` gives the same masks; use this one to debug it.

    Same rule, arguments and result as
    ``mmseg_dupl.models.noise_filter.gmm.gmm_noise_mask`` (see its docstring).

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
    means, variances, weights = fit_gmm_1d(x, fit_on, max_iter, tol, reg_covar,
                                           init)
    accept = (fit_on.sum(dim=1) > min_pixels) & (
        (means[:, 0] - means[:, 1]).abs() > min_mean_gap)
    noisy_comp = means.argmax(dim=1)
    post = gmm_posterior(x, means, variances, weights)
    index = noisy_comp[:, None, None].expand(-1, x.shape[1], 1)
    post_noisy = post.gather(2, index)[..., 0]
    noisy = accept[:, None] & (post_noisy > gamma) & foreground
    return noisy.view(labels.shape)
