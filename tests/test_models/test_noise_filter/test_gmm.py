# Copyright (c) OpenMMLab. All rights reserved.
import warnings

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture
from threadpoolctl import threadpool_limits

from mmseg_dupl.models.noise_filter import gmm as gmm_module
from mmseg_dupl.models.noise_filter import gmm_em, gmm_packing, gmm_two_means
from mmseg_dupl.models.noise_filter.gmm import filter_noisy_labels, gmm_noise_mask

from gmm_reference import (em_gmm_1d, fit_gmm_1d, gmm_noise_mask_reference,
                           gmm_posterior, init_gmm_params, two_means_split)

IGN = 255


def _sklearn_gmm(x):
    """The official call (algorithm.md §8) on float32 data."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', ConvergenceWarning)
        return GaussianMixture(
            n_components=2,
            max_iter=10,
            tol=1e-2,
            reg_covar=5e-4,
            random_state=0).fit(x.astype(np.float32)[:, None])


def _sklearn_noise_mask(loss, label):
    """algorithm.md §8 with sklearn, one image."""
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


@pytest.fixture(scope='module')
def random_maps():
    """200 random 3000-pixel maps (losses, labels) and sklearn's masks."""
    rng = np.random.default_rng(2024)
    kinds = ['gamma', 'normal', 'unimodal', 'few']
    maps = [_random_loss_map(rng, kinds[i % 4]) for i in range(200)]
    losses = np.stack([m[0] for m in maps])
    labels = np.stack([m[1] for m in maps])
    # one thread: sklearn's pools spin on the shared 2-core host
    with threadpool_limits(1):
        ref = np.stack([_sklearn_noise_mask(lo, la) for lo, la in maps])
    return torch.from_numpy(losses), torch.from_numpy(labels), ref


@pytest.mark.parametrize('noise_mask, init, least', [
    (gmm_noise_mask, 'kmeans', 1.0),
    (gmm_noise_mask, 'two_means', 0.995),
    (gmm_noise_mask_reference, 'kmeans', 0.99999),
])
def test_gmm_noise_mask_agrees_with_sklearn(random_maps, noise_mask, init,
                                            least):
    """The default (sklearn's k-means start) gives sklearn's masks here;
    the two-means start agrees on >= 99.5 % of the pixels; the float64
    reference EM may flip a pixel at the posterior threshold."""
    losses, labels, ref = random_maps
    ours = noise_mask(losses, labels, init=init).numpy()
    agreement = (ours == ref).mean()
    print(f'{noise_mask.__name__} ({init}) agreement with sklearn: '
          f'{agreement:.5%} over {ours.size} pixels; noisy: ours '
          f'{ours.sum()}, sklearn {ref.sum()}')
    assert agreement >= least
    assert ref.sum() > 10000  # the test does exercise the filter
    for i, kind in enumerate(['gamma', 'normal', 'unimodal', 'few']):
        rows = slice(i, None, 4)
        if kind in ('unimodal', 'few'):
            assert not ours[rows].any() and not ref[rows].any(), kind
    # Background and ignored pixels are never flagged.
    labels = labels.numpy()
    assert not ours[(labels == 0) | (labels == IGN)].any()


def _large_maps(seed=7, count=12, pixels=16000):
    """Maps whose rows span several packing chunks (4096 values) and have
    very different fit counts (the 'few' rows are not fitted)."""
    rng = np.random.default_rng(seed)
    kinds = ['gamma', 'normal', 'unimodal', 'few', 'normal', 'gamma']
    maps = [
        _random_loss_map(rng, kinds[i % 6], pixels) for i in range(count)
    ]
    return (torch.from_numpy(np.stack([m[0] for m in maps])),
            torch.from_numpy(np.stack([m[1] for m in maps])))


def test_fast_noise_mask_equals_reference(random_maps):
    """The default (packed, float32) masks against the reference EM's
    (float64): the same rows get noisy pixels, and only float32 rounding
    could flip a pixel (none do on these maps at the time of writing)."""
    small = random_maps[:2]
    large = _large_maps()
    for losses, labels in (small, large, (large[0][:6].double(),
                                          large[1][:6])):
        fast = gmm_noise_mask(losses, labels)
        ref = gmm_noise_mask_reference(losses, labels)
        assert fast.dtype == torch.bool and fast.shape == ref.shape
        assert torch.equal(fast.any(1), ref.any(1))
        assert ref.sum() > 3000  # the filter is exercised
        differ = int((fast != ref).sum())
        print(f'{losses.dtype} {tuple(losses.shape)}: {differ} pixels '
              f'differ, {int(ref.sum())} noisy')
        assert differ <= 1e-5 * fast.numel()


def _rows_to_fit(seed=3):
    """Rows of different lengths (1 to 5 chunks), bimodal and unimodal."""
    rng = np.random.default_rng(seed)
    lengths = [9000, 1500, 4096, 4097, 20000, 2500]
    x = np.zeros((len(lengths), max(lengths)), np.float32)
    valid = np.zeros(x.shape, bool)
    for i, n in enumerate(lengths):
        high = rng.random(n) < (0.3 if i % 3 else 0.0)
        x[i, :n] = np.where(high, rng.normal(2.5, 0.6, n),
                            rng.gamma(2., .15, n)) + 0.1
        valid[i, :n] = True
    perm = rng.permutation(x.shape[1])  # scatter the valid entries
    return torch.from_numpy(x[:, perm]), torch.from_numpy(valid[:, perm])


@pytest.mark.parametrize('bins', [16384, 64])
def test_histogram_seed_and_lloyd_passes_reach_two_means_split(bins):
    x, valid = _rows_to_fit()
    counts = valid.sum(1)
    rows = len(counts)
    values, packed_valid, row = gmm_packing.pack_fit_values(x, valid, counts)
    feats, shift = gmm_packing.centred_features(values, packed_valid, row,
                                                rows)
    total = gmm_packing.weighted_moments(feats[:, :1], feats, row,
                                         rows)[:, 0]
    mid = gmm_two_means.histogram_two_means(feats, row, rows, bins)
    clusters = gmm_two_means.two_means_clusters(values, feats, row, shift,
                                                total, mid)
    ref = two_means_split(x, valid)
    # Even from a coarse seed, the exact passes end at the same split.
    assert clusters[:, 1, 0].long().tolist() == ref.sum(1).tolist()
    assert clusters[:, 0, 0].long().tolist() == (valid & ~ref).sum(1).tolist()
    ref_sum = torch.where(ref, x.double(), 0).sum(1)
    torch.testing.assert_close(clusters[:, 1, 1] + shift * clusters[:, 1, 0],
                               ref_sum)


def test_fast_fit_matches_reference_fit():
    x, valid = _rows_to_fit()
    fast = gmm_em.fit_gmm_rows(x, valid, valid.sum(1), 10, 1e-2, 5e-4)
    ref = fit_gmm_1d(x, valid)
    # float32 pixel math: about 1e-5 relative on the variances (the
    # reference's own test against sklearn allows 1e-4).
    for name, a, b in zip(('means', 'variances', 'weights'), fast, ref):
        torch.testing.assert_close(a, b, rtol=3e-5, atol=0, msg=name)


def test_chunk_layout():
    row, valid = gmm_packing._chunk_layout(torch.tensor([5, 1, 9]), 4)
    assert row.tolist() == [0, 0, 1, 2, 2, 2]
    assert valid.sum(1).tolist() == [4, 1, 1, 4, 4, 1]
    assert valid[1].tolist() == [True, False, False, False]


@pytest.mark.parametrize(
    'means, variances, weights',
    [
        ([0.3, 2.7], [0.03, 0.5], [0.7, 0.3]),  # wide noisy: outside form
        ([3.0, 0.5], [0.1, 1.0], [0.2, 0.8]),  # narrow noisy, first
        ([0.5, 2.0], [0.2, 0.2], [0.6, 0.4]),  # equal variances: linear
        ([0.0, 0.1], [0.01, 1.0], [0.001, 0.999]),  # no root: all noisy
        ([0.0, 5.0], [1.0, 0.01], [1 - 1e-7, 1e-7]),  # no root: none
    ])
def test_noisy_intervals_are_the_posterior_test(means, variances, weights):
    params = [torch.tensor([v], dtype=torch.float64)
              for v in (means, variances, weights)]
    grid = torch.linspace(-4, 9, 26001)
    lo, hi, outside = gmm_module._noisy_intervals(*params, 0.95,
                                                  torch.float32)
    mask = gmm_module._interval_mask(grid[None], torch.ones(1, 26001).bool(),
                                     lo, hi, outside)
    post = gmm_posterior(grid[None], *params)[0, :, params[0].argmax()]
    assert torch.equal(mask[0], post > 0.95)
    # numpy views on the CPU give what the tensors give elsewhere
    via_numpy = gmm_module._on_arrays(gmm_module._interval_mask, grid[None],
                                      torch.ones(1, 26001).bool(), lo, hi,
                                      outside)
    assert torch.equal(via_numpy, mask)


def test_gmm_noise_mask_edge_rows_match_reference():
    rng = np.random.default_rng(5)
    loss = np.abs(rng.normal(0.5, 1.5, (4, 3000))).astype(np.float32)
    label = np.full((4, 3000), 3)
    label[0, 1:] = 0  # one fit pixel
    label[1, 2:] = 0  # two
    loss[2] = 0.5  # constant losses
    loss[3, ::2] += 4.0  # bimodal
    loss, label = torch.from_numpy(loss), torch.from_numpy(label)
    for min_pixels in (0, 1000):
        fast = gmm_noise_mask(loss, label, min_pixels=min_pixels)
        ref = gmm_noise_mask_reference(loss, label, min_pixels=min_pixels)
        assert torch.equal(fast, ref), min_pixels
        assert fast[3].any() and not fast[:3].any()
    # half-precision losses are fitted in float32 (an fp32 island)
    torch.testing.assert_close(
        gmm_noise_mask(loss.bfloat16(), label),
        gmm_noise_mask(loss.bfloat16().float(), label))


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
    with pytest.raises(ValueError, match='gamma'):
        gmm_noise_mask(t_loss, torch.from_numpy(label)[None], gamma=1.0)
    with pytest.raises(ValueError, match='floating'):
        gmm_noise_mask(t_loss.long(), torch.from_numpy(label)[None])
    # Losses that require grad are fine (the mask has no graph).
    grad = gmm_noise_mask(t_loss.clone().requires_grad_(),
                          torch.from_numpy(label)[None])
    assert torch.equal(grad, flagged) and not grad.requires_grad


def test_filter_noisy_labels():
    labels = torch.tensor([[0, 3, 5, IGN]])
    noisy = torch.tensor([[False, True, False, True]])
    out = filter_noisy_labels(labels, noisy)
    assert out.tolist() == [[0, IGN, 5, IGN]]
    assert labels.tolist() == [[0, 3, 5, IGN]]  # not in place
    with pytest.raises(ValueError, match='bool'):
        filter_noisy_labels(labels, noisy.long())
