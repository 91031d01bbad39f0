"""Accuracy of the Thompson allocation (quadrature) and exactness of the fast samplers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, stats

from bandit import make_policy
from bandit.thompson import thompson_allocation


def _exact(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = []
    for i in range(a.size):
        others = [j for j in range(a.size) if j != i]

        def f(x: float, i: int = i, others: list[int] = others) -> float:
            return stats.beta.pdf(x, a[i], b[i]) * np.prod(
                [stats.beta.cdf(x, a[j], b[j]) for j in others]
            )

        lo, hi = stats.beta.ppf([1e-14, 1 - 1e-14], a[i], b[i])
        out.append(integrate.quad(f, lo, hi, limit=500, epsabs=1e-13)[0])
    return np.array(out)


@pytest.mark.parametrize(
    ("a", "b", "tol"),
    [
        ([3, 10, 40, 200], [50, 120, 400, 1800], 5e-5),
        ([1, 1, 1], [1, 1, 1], 1e-9),
        ([5000, 4900, 20], [95000, 95100, 500], 5e-5),
        ([2, 30, 31, 8, 9, 12, 40, 41, 3, 60], [5, 60, 61, 20, 20, 25, 80, 80, 9, 120], 3e-4),
    ],
)
def test_quadrature_matches_adaptive_integration(a, b, tol) -> None:
    a, b = np.asarray(a, float), np.asarray(b, float)
    from scipy import special

    got = thompson_allocation(
        lambda x: special.betainc(a, b, x), lambda q: special.betaincinv(a, b, q), a.size
    )
    np.testing.assert_allclose(got, _exact(a, b), atol=tol)


def test_batch_sampler_with_outsiders_follows_the_posterior() -> None:
    # a trained state where most arms are outsiders, so the inversion path is exercised
    policy = make_policy("thompson", 10, seed=3)
    means = np.linspace(0.02, 0.08, 10)
    counts = np.array([150, 170, 360, 100, 560, 320, 1600, 1900, 9000, 46000])
    policy.update_batch(
        np.repeat(np.arange(10), counts),
        np.concatenate(
            [
                (np.arange(n) < round(m * n)).astype(float)
                for m, n in zip(means, counts, strict=True)
            ]
        ),
    )
    alloc = policy.allocation()
    draws = policy.select_batch(400_000).arms
    freq = np.bincount(draws, minlength=10) / draws.size
    tol = 5 * np.sqrt(alloc * (1 - alloc) / draws.size) + 2e-4
    assert np.all(np.abs(freq - alloc) <= tol), (freq, alloc)
    # and the same frequencies as the plain sampler
    a, b = policy.posterior()
    plain = np.random.default_rng(0).beta(a, b, size=(400_000, 10)).argmax(axis=1)
    plain_freq = np.bincount(plain, minlength=10) / plain.size
    assert np.all(np.abs(freq - plain_freq) <= 2 * tol)


def test_buffered_single_selections_follow_the_current_posterior() -> None:
    policy = make_policy("thompson", 3, seed=5)
    policy.update_batch(
        [0] * 30 + [1] * 30 + [2] * 30,
        [1.0] * 10 + [0.0] * 20 + [1.0] * 15 + [0.0] * 15 + [1.0] * 12 + [0.0] * 18,
    )
    picks = []
    for _ in range(6000):
        picks.append(policy.select().arm)
        policy.update(0, 0.0)  # arm 0 keeps losing: its buffered samples must be redrawn
    late = np.array(picks[-2000:])
    assert (late == 0).mean() < 0.01
