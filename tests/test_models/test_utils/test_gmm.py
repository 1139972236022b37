# Copyright (c) OpenMMLab. All rights reserved.
import warnings

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture

from mmseg_dupl.models.utils.gmm import (em_gmm_1d, filter_noisy_labels,
                                         fit_gmm_1d, gmm_noise_mask,
                                         gmm_posterior, init_gmm_params,
                                         two_means_split)

IGN = 255


def _sklearn_gmm(x):
    """The official call (spec 8) on float32 data."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', ConvergenceWarning)
        return GaussianMixture(
            n_components=2,
            max_iter=10,
            tol=1e-2,
            reg_covar=5e-4,
            random_state=0).fit(x.astype(np.float32)[:, None])


def _sklearn_noise_mask(loss, label):
    """Spec 8 with sklearn, one image."""
    fg = (label != 0) & (label != IGN)
    fit_on = fg & (loss > 0.1)
    noisy = np.zeros_like(fg)
    if fit_on.sum() > 1000:
        g = _sklearn_gmm(loss[fit_on])
        mu = g.means_[:, 0]
        if abs(mu[0] - mu[1]) > 1.0:
            post = g.predict_proba(loss[:, None])[:, mu.argmax()]
            noisy = (post > 0.95) & fg
    return noisy


def test_two_means_split_hand_values():
    x = torch.tensor([[0.0, 5.1, 0.1, 9.0, 5.0, 0.2],
                      [1.0, 2.0, 3.0, 10.0, 11.0, 0.0]])
    valid = torch.tensor([[True, True, True, False, True, True],
                          [True, True, True, True, True, False]])
    upper = two_means_split(x, valid)
    assert upper[0].tolist() == [False, True, False, False, True, False]
    assert upper[1].tolist() == [False, False, False, True, True, False]
    # Fewer than two valid entries: no upper cluster.
    one = two_means_split(x, torch.eye(6, dtype=torch.bool)[:2])
    assert not one.any()


def _assert_same_params(ours, g, rtol):
    means, variances, weights = ours
    order, mine = np.argsort(g.means_[:, 0]), torch.argsort(means)
    np.testing.assert_allclose(means[mine], g.means_[order, 0], rtol=rtol)
    np.testing.assert_allclose(
        variances[mine], g.covariances_[order, 0, 0], rtol=rtol)
    np.testing.assert_allclose(weights[mine], g.weights_[order], rtol=rtol)
    return order, mine


def test_fit_gmm_1d_matches_sklearn_on_separated_data():
    rng = np.random.default_rng(0)
    rows = []
    for sep, frac in ((3.0, 0.3), (1.5, 0.5), (5.0, 0.05)):
        n, k = 1500, int(1500 * frac)
        rows.append(
            np.concatenate(
                [rng.normal(0.5, 0.3, n - k),
                 rng.normal(0.5 + sep, 0.6, k)]))
    x = torch.from_numpy(np.stack(rows).astype(np.float32))
    params = fit_gmm_1d(x, torch.ones_like(x).bool())
    post = gmm_posterior(x, *params)
    for i, row in enumerate(rows):
        g = _sklearn_gmm(row)
        order, mine = _assert_same_params([p[i] for p in params], g, 1e-4)
        np.testing.assert_allclose(
            post[i][:, mine],
            g.predict_proba(row[:, None])[:, order],
            atol=1e-4)


def test_em_matches_sklearn_from_the_same_start():
    # Overlapping components: EM needs several iterations, rows stop at
    # different iterations, and sklearn starts from our initialisation.
    rng = np.random.default_rng(1)
    rows = [
        np.concatenate(
            [rng.normal(0.5, 0.3, 1200),
             rng.normal(0.5 + sep, 0.6, 300)]) for sep in (0.6, 0.8, 1.2)
    ]
    x = torch.from_numpy(np.stack(rows).astype(np.float32))
    valid = torch.ones_like(x).bool()
    init = init_gmm_params(x, valid)
    for max_iter in (1, 3, 10):
        ours = em_gmm_1d(x, valid, *init, max_iter=max_iter)
        for i, row in enumerate(rows):
            with warnings.catch_warnings():
                warnings.simplefilter('ignore', ConvergenceWarning)
                g = GaussianMixture(
                    n_components=2,
                    max_iter=max_iter,
                    tol=1e-2,
                    reg_covar=5e-4,
                    weights_init=init[2][i].numpy(),
                    means_init=init[0][i, :, None].numpy(),
                    precisions_init=(1 / init[1][i]).numpy()[:, None, None])
                g.fit(row.astype(np.float32)[:, None])
            _assert_same_params([p[i] for p in ours], g, 1e-3)


def test_fit_gmm_1d_rows_are_independent_and_mask_respected():
    torch.manual_seed(0)
    x = torch.cat([torch.randn(3, 400), 4 + torch.randn(3, 200)], dim=1)
    valid = torch.rand(3, 600) > 0.3
    batched = fit_gmm_1d(x, valid)
    for i in range(3):
        # Invalid entries are moved far away: they must not matter.
        xi = torch.where(valid[i:i + 1], x[i:i + 1], 1e3)
        single = fit_gmm_1d(xi, valid[i:i + 1])
        for b, s in zip(batched, single):
            torch.testing.assert_close(b[i:i + 1], s)


def test_gmm_posterior_sums_to_one():
    x = torch.linspace(-2, 6, 50)[None]
    post = gmm_posterior(x, torch.tensor([[0., 4.]]), torch.tensor([[1., .5]]),
                         torch.tensor([[.7, .3]]))
    assert post.shape == (1, 50, 2)
    torch.testing.assert_close(post.sum(-1), torch.ones(1, 50))
    assert post[0, 0, 0] > 0.99 and post[0, -1, 1] > 0.99


def _random_loss_map(rng, kind, pixels=3000):
    label = rng.choice([0, 3, 7, IGN], size=pixels, p=[.2, .45, .3, .05])
    fg = (label != 0) & (label != IGN)
    n = int(fg.sum())
    if kind == 'few':
        # At most 1000 foreground pixels: never fitted.
        keep = np.flatnonzero(fg)[:rng.integers(200, 1001)]
        label[np.setdiff1d(np.flatnonzero(fg), keep)] = 0
        fg = (label != 0) & (label != IGN)
        n = int(fg.sum())
        x = np.where(
            rng.random(n) < .3, rng.normal(5, .5, n), rng.gamma(1., .2, n))
    elif kind == 'unimodal':
        x = rng.gamma(rng.uniform(2, 6), rng.uniform(.05, .12), n) if \
            rng.random() < .5 else rng.normal(rng.uniform(.3, 3), .3, n)
    else:
        frac, sep = rng.uniform(.05, .5), rng.uniform(.5, 6.)
        noisy = rng.random(n) < frac
        clean = rng.gamma(rng.uniform(1, 3), rng.uniform(.1, .4), n)
        if kind == 'gamma':
            high = rng.gamma(rng.uniform(4, 9), (0.5 + sep) / 6., n)
        else:
            high = rng.normal(.5 + sep, rng.uniform(.2, 1.5), n)
        x = np.where(noisy, high, clean)
    loss = np.zeros(pixels, np.float32)
    loss[fg] = np.abs(x)
    loss[label == 0] = rng.gamma(1., .2, int((label == 0).sum()))
    return loss, label


def test_gmm_noise_mask_agrees_with_sklearn():
    rng = np.random.default_rng(2024)
    kinds = ['gamma', 'normal', 'unimodal', 'few']
    maps = [_random_loss_map(rng, kinds[i % 4]) for i in range(200)]
    losses = np.stack([m[0] for m in maps])
    labels = np.stack([m[1] for m in maps])
    ref = np.stack([_sklearn_noise_mask(lo, la) for lo, la in maps])
    ours = gmm_noise_mask(torch.from_numpy(losses),
                          torch.from_numpy(labels)).numpy()
    agreement = (ours == ref).mean()
    print(f'GMM noise-mask agreement with sklearn: {agreement:.5%} over '
          f'{ours.size} pixels; noisy: ours {ours.sum()}, sklearn '
          f'{ref.sum()}')
    assert agreement >= 0.995
    assert ref.sum() > 10000  # the test does exercise the filter
    for i, kind in enumerate(kinds):
        rows = slice(i, None, 4)
        if kind in ('unimodal', 'few'):
            assert not ours[rows].any() and not ref[rows].any(), kind
    # Background and ignored pixels are never flagged.
    assert not ours[(labels == 0) | (labels == IGN)].any()


def test_gmm_noise_mask_rules():
    rng = np.random.default_rng(0)
    n = 1000
    loss = np.concatenate([rng.gamma(1., .2, n), rng.normal(5., .3, n)])
    loss = np.abs(loss).astype(np.float32)
    label = np.full(2 * n, 3)
    t_loss = torch.from_numpy(loss)[None]
    flagged = gmm_noise_mask(t_loss, torch.from_numpy(label)[None])
    assert flagged[0, n:].float().mean() > 0.99
    assert flagged[0, :n].float().mean() < 0.01
    # Exactly min_pixels fit pixels is not enough (strictly more needed).
    fit = (loss > 0.1).sum()
    assert not gmm_noise_mask(
        t_loss, torch.from_numpy(label)[None], min_pixels=int(fit)).any()
    assert gmm_noise_mask(
        t_loss, torch.from_numpy(label)[None], min_pixels=int(fit) - 1).any()
    # A gap below min_mean_gap rejects the fit.
    assert not gmm_noise_mask(
        t_loss, torch.from_numpy(label)[None], min_mean_gap=10.).any()
    # (N, H, W) input keeps its shape; background rows stay untouched.
    lab2 = torch.from_numpy(label).view(1, 40, 50).clone()
    lab2[0, -5:] = 0
    mask = gmm_noise_mask(t_loss.view(1, 40, 50), lab2)
    assert mask.shape == (1, 40, 50) and not mask[0, -5:].any()
    with pytest.raises(ValueError, match='share'):
        gmm_noise_mask(t_loss, lab2)


def test_filter_noisy_labels():
    labels = torch.tensor([[0, 3, 5, IGN]])
    noisy = torch.tensor([[False, True, False, True]])
    out = filter_noisy_labels(labels, noisy)
    assert out.tolist() == [[0, IGN, 5, IGN]]
    assert labels.tolist() == [[0, 3, 5, IGN]]  # not in place
    with pytest.raises(ValueError, match='bool'):
        filter_noisy_labels(labels, noisy.long())
