# Copyright (c) OpenMMLab. All rights reserved.
"""Batched 1-D two-component GMM and DuPL's noise-mask rule (algorithm.md §8).

The official code fits ``sklearn.mixture.GaussianMixture(n_components=2,
max_iter=10, tol=1e-2, reg_covar=5e-4, random_state=0)`` per image and per
student on the CPU, copying each loss map to the host. Here every row of an
``(N, P)`` tensor is an independent 1-D problem, and all rows are fitted at
once in torch on the inputs' device, with a few host syncs per call (one
per k-means and per EM iteration) whatever the batch size (algorithm.md
§15.3).

The fit follows sklearn (1.9) step by step:

.. code:: text

    start: KMeans(n_clusters=2, n_init=1) with the draws of a fresh
           RandomState(0): k-means++ seeding, Lloyd to sklearn's tolerance
           -> labels -> resp (0/1) -> M-step (weights /= n)
    for it in 1..max_iter:
        E-step with current params -> lower bound = mean log-likelihood
        M-step (weights /= sum)
        stop (this row) when |lower bound - previous| < tol

The start (``init='kmeans'``, the default) is sklearn's, not an imitation
of it: the same draws (they do not depend on the data, only on its size),
the same float32 operations, and the sums whose float32 rounding decides
it made by numpy's own calls on CPU tensors (``gmm_kmeans.py``,
``gmm_kmeans_sums.py``). It gives EM the labels sklearn gives it; the
tests check this against sklearn on 1040 random loss maps, hard cases
included, and find the same masks pixel for pixel. What can still differ
(algorithm.md §8 counts it): sklearn runs EM in float32 (its parameters
move from the exact EM by up to about 3e-4 relative on large images), so
a pixel whose posterior is that close to ``gamma`` can flip; on other
devices than the CPU the start's mean, variance and potentials are
float64 sums (its cumulative sum stays exact), which could move a
k-means++ draw in rare cases (none in the tests).

``init='two_means'`` keeps the earlier deterministic start (two-means from
each row's minimum and maximum, seeded from a histogram, Lloyd to its
fixed point): a little faster, and **not the reference's masks** (they
agree on about 99.99 % of pixels).

``gmm_noise_mask`` (two orders of magnitude faster on the CPU than a
readable float64 EM, see benchmarks/RESULTS.md) works on the fitted rows'
fit values only, by role:

- ``gmm_packing.py``: the fit values packed into chunks, their centred
  features and weighted moments;
- ``gmm_kmeans.py`` and ``gmm_kmeans_sums.py``: sklearn's k-means start;
- ``gmm_two_means.py``: the two-means start, seeded from a histogram (its
  fixed point found without a loop), then exact Lloyd passes;
- ``gmm_em.py``: EM on the moments, through the log-odds (a sigmoid
  instead of a 2-way logsumexp) in float32 with float64 sums;
- this module: the rule (which pixels are fitted, which fits count) and
  the posterior test solved as a quadratic in x, so that the final mask is
  two comparisons per pixel.

The readable float64 reference of the same algorithm (``fit_gmm_1d``,
``gmm_posterior``, ``gmm_noise_mask_reference``, with sklearn's own KMeans
as its start) lives with the tests (``tests/gmm_reference.py``), which
check it against sklearn parameter by parameter and check that
``gmm_noise_mask``'s masks equal its masks up to float32 rounding.
"""
import math
from typing import Any, Callable, Tuple, Union

import numpy as np
import torch
from torch import Tensor
from .gmm_em import fit_gmm_rows, log_density_coeffs
from .gmm_noise_fit import GMMNoiseFit
from .gmm_two_means import round_down, round_up
from ..utils.precision import fp32_island

#: A tensor, or a numpy array in the CPU fast paths (see ``_on_arrays``).
ArrayLike = Union[Tensor, np.ndarray]


#: The starts of the fit (``init`` of ``gmm_noise_mask``).
GMM_INITS = ('kmeans', 'two_means')


def _check_noise_inputs(losses: Tensor, labels: Tensor, gamma: float,
                        init: str) -> None:
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
    if init not in GMM_INITS:
        raise ValueError(f'gmm_noise_mask: init must be one of {GMM_INITS}, '
                         f'got {init!r}')


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


def _count(mask: Tensor) -> Tensor:
    """int64 count of the True entries of each row of a bool (N, P).

    numpy's ``count_nonzero`` for CPU tensors: several times faster there
    than torch's bool sum.
    """
    if mask.device.type == 'cpu':
        return torch.from_numpy(
            np.count_nonzero(mask.numpy(), axis=1).astype(np.int64))
    return mask.sum(dim=1)


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
    coeffs = log_density_coeffs(means, variances, weights)
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
    lo_in, hi_in = round_down(lo, dtype), round_up(hi, dtype)
    inf = lo_in.new_tensor(math.inf)
    lo_out = torch.nextafter(round_up(lo, dtype), -inf)
    hi_out = torch.nextafter(round_down(hi, dtype), inf)
    return (torch.where(outside, lo_out, lo_in),
            torch.where(outside, hi_out, hi_in), outside)


def gmm_noise_mask(losses: Tensor,
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
    """DuPL's per-image noisy-pixel rule (algorithm.md §8), for all rows at
    once.

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

    The fit is sklearn's ``GaussianMixture`` fit as the official code
    calls it (its k-means start, then EM with its stopping rule), computed
    batched (see the module docstring); its masks equal
    ``gmm_noise_mask_reference``'s up to float32 rounding. Runs without
    autograd.

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
        init (str): The start of the fit: ``'kmeans'`` (sklearn's, the
            reference's masks) or ``'two_means'`` (deterministic two-means
            from each row's min and max, a little faster; not the
            reference's masks). Defaults to ``'kmeans'``.

    Returns:
        Tensor: Bool, same shape as ``labels``, True = noisy.
    """
    return gmm_noise_fit(losses, labels, min_loss, min_pixels, min_mean_gap,
                         gamma, ignore_index, max_iter, tol, reg_covar,
                         init).noisy


@fp32_island
def gmm_noise_fit(losses: Tensor,
                  labels: Tensor,
                  min_loss: float = 0.1,
                  min_pixels: int = 1000,
                  min_mean_gap: float = 1.0,
                  gamma: float = 0.95,
                  ignore_index: int = 255,
                  max_iter: int = 10,
                  tol: float = 1e-2,
                  reg_covar: float = 5e-4,
                  init: str = 'kmeans') -> GMMNoiseFit:
    """``gmm_noise_mask`` with what each row's fit did (for logging).

    Same arguments as :func:`gmm_noise_mask`.

    Returns:
        GMMNoiseFit: ``noisy`` (bool, shaped like ``labels``), and per row
        (N, ): ``foreground`` (int, labels neither 0 nor ignore),
        ``fitted`` (bool, more than ``min_pixels`` fit values),
        ``accepted`` (bool, fitted with ``|mu_0 - mu_1| > min_mean_gap``)
        and ``mean_gap`` (float, ``|mu_0 - mu_1|``; NaN where not fitted).
    """
    _check_noise_inputs(losses, labels, gamma, init)
    with torch.no_grad():
        x = losses.detach().flatten(1)
        foreground = _on_arrays(_foreground_mask, labels.flatten(1), x,
                                ignore_index)
        fit_on = _on_arrays(_fit_mask, x, foreground, x.new_tensor(min_loss))
        counts = _count(fit_on).int()
        fitted = counts > min_pixels
        gap = x.new_full(counts.shape, math.nan)
        accepted = torch.zeros_like(fitted)
        fg_count = _count(foreground)
        if not bool(fitted.any()):
            return GMMNoiseFit(
                torch.zeros_like(foreground).view(labels.shape), fg_count,
                fitted, accepted, gap)
        # Pack the fitted rows only: clear the others (through the uint8
        # view: a broadcast bool & is about 15x slower on the CPU).
        fit_on.view(torch.uint8).mul_(fitted.view(torch.uint8)[:, None])
        means, variances, weights = fit_gmm_rows(x, fit_on, counts[fitted],
                                                 max_iter, tol, reg_covar,
                                                 init)
        gap[fitted] = (means[:, 0] - means[:, 1]).abs().to(gap.dtype)
        accept = (means[:, 0] - means[:, 1]).abs() > min_mean_gap
        accepted[fitted] = accept
        if not bool(accept.any()):
            return GMMNoiseFit(
                torch.zeros_like(foreground).view(labels.shape), fg_count,
                fitted, accepted, gap)
        # Rows without an accepted fit get an empty interval: never noisy.
        lo = x.new_full(counts.shape, math.inf)
        hi = x.new_full(counts.shape, -math.inf)
        outside = torch.zeros_like(fitted)
        rows = fitted.nonzero()[accept, 0]
        lo[rows], hi[rows], outside[rows] = _noisy_intervals(
            means[accept], variances[accept], weights[accept], gamma,
            x.dtype)
        noisy = _on_arrays(_interval_mask, x, foreground, lo, hi, outside)
    return GMMNoiseFit(noisy.view(labels.shape), fg_count, fitted, accepted,
                       gap)


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
