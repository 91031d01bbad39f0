"""Exact probability of being best and expected loss for Beta posteriors."""

from __future__ import annotations

import numpy as np
import pytest

from bandit.inference import (
    expected_loss,
    gain_over_equal_split,
    probability_best,
    value_remaining,
)


@pytest.mark.parametrize(
    ("alpha", "beta"),
    [
        ([11.0, 31.0, 1.0], [91.0, 71.0, 1.0]),
        ([5000.0, 5050.0], [5000.0, 4950.0]),
        ([2.0, 2.0, 2.0, 3.0], [5.0, 5.0, 5.0, 4.0]),
    ],
)
def test_matches_monte_carlo(alpha, beta):
    rng = np.random.default_rng(7)
    theta = rng.beta(alpha, beta, size=(400_000, len(alpha)))
    mc_best = np.bincount(theta.argmax(axis=1), minlength=len(alpha)) / len(theta)
    mc_loss = (theta.max(axis=1, keepdims=True) - theta).mean(axis=0)
    # 400,000 draws: standard error <= 0.0008 on a probability
    np.testing.assert_allclose(probability_best(alpha, beta), mc_best, atol=4e-3)
    np.testing.assert_allclose(expected_loss(alpha, beta), mc_loss, atol=2e-3)


def test_symmetric_arms_share_evenly_and_lose_equally():
    p = probability_best([3.0, 3.0, 3.0], [7.0, 7.0, 7.0])
    np.testing.assert_allclose(p, 1 / 3, atol=1e-6)
    loss = expected_loss([3.0, 3.0, 3.0], [7.0, 7.0, 7.0])
    np.testing.assert_allclose(loss, loss[0], rtol=1e-9)
    assert loss[0] > 0.05  # E[max of 3] - E[one] is far from zero for these spreads


def test_one_arm_and_dominated_arm():
    assert probability_best([1.0], [1.0]).tolist() == [1.0]
    assert expected_loss([1.0], [1.0]).tolist() == [0.0]
    p = probability_best([1.0, 1000.0], [1000.0, 1.0])
    assert p[0] < 1e-12 and np.isclose(p.sum(), 1.0)


def test_bad_input_names_the_field():
    with pytest.raises(ValueError, match="alpha"):
        probability_best([0.0, 1.0], [1.0, 1.0])
    with pytest.raises(ValueError, match="beta"):
        expected_loss([1.0, 1.0], [1.0])


def test_default_grid_is_close_to_a_fine_one():
    a = np.array([51.0, 41.0, 31.0, 21.0, 11.0, 5050.0])
    b = np.array([451.0, 361.0, 271.0, 181.0, 91.0, 4950.0])
    np.testing.assert_allclose(probability_best(a, b), probability_best(a, b, 65536), atol=3e-4)
    np.testing.assert_allclose(expected_loss(a, b), expected_loss(a, b, 65536), atol=3e-5)


def _normal_gap_quantile(alpha, beta, level):
    """Two arms, large posteriors: θ_other - θ_champion is about normal; the quantile of
    max(gap, 0) is max(q_level(gap), 0)."""
    from scipy import stats

    a, b = np.asarray(alpha), np.asarray(beta)
    mean = a / (a + b)
    var = a * b / ((a + b) ** 2 * (a + b + 1))
    gap = stats.norm(mean[0] - mean[1], np.sqrt(var.sum()))
    return max(gap.ppf(level), 0.0)


def test_value_remaining_matches_the_normal_approximation():
    alpha, beta = [960.0, 1_000.0], [19_040.0, 19_000.0]  # 4.8% vs 5.0%, 20,000 each
    v = value_remaining(alpha, beta, 0.95, n_draws=200_000, seed=1)
    assert v.champion == 1
    expected = _normal_gap_quantile(alpha, beta, 0.95)
    assert expected > 0
    assert v.absolute == pytest.approx(expected, rel=0.03)
    assert v.relative == pytest.approx(expected / 0.05, rel=0.04)


def test_value_remaining_shrinks_with_data_and_is_seeded():
    few = value_remaining([3.0, 5.0, 4.0], [30.0, 28.0, 29.0])
    many = value_remaining([300.0, 500.0, 400.0], [3000.0, 2800.0, 2900.0])
    assert few.champion == many.champion == 1
    assert many.relative < few.relative / 3
    assert value_remaining([3.0, 5.0], [30.0, 28.0], seed=4) == value_remaining(
        [3.0, 5.0], [30.0, 28.0], seed=4
    )
    assert value_remaining([2.0], [9.0]).absolute == 0.0  # one arm: nothing can beat it
    # a clearly dominated champion leaves a lot of value
    forced = value_remaining([11.0, 31.0], [91.0, 71.0], champion=0)
    assert forced.absolute > 0.15 and forced.relative > 1.0


def test_value_remaining_bad_input_names_the_field():
    with pytest.raises(ValueError, match="level"):
        value_remaining([1.0, 1.0], [1.0, 1.0], level=1.0)
    with pytest.raises(ValueError, match="champion"):
        value_remaining([1.0, 1.0], [1.0, 1.0], champion=2)
    with pytest.raises(ValueError, match="n_draws"):
        value_remaining([1.0, 1.0], [1.0, 1.0], n_draws=10)


def test_gain_over_equal_split_is_unbiased_with_its_standard_error():
    n = np.array([700, 200, 100])
    p = np.array([0.10, 0.05, 0.02])
    truth = float(np.sum((n - n.sum() / 3) * p))
    rng = np.random.default_rng(11)
    gains, ses = [], []
    for _ in range(3000):
        clicks = rng.binomial(n, p).astype(float)
        g = gain_over_equal_split(n, clicks, clicks)  # binary rewards: squares = values
        gains.append(g.gained)
        ses.append(g.se)
    assert np.mean(gains) == pytest.approx(truth, abs=3 * np.std(gains) / np.sqrt(3000))
    assert np.mean(ses) == pytest.approx(np.std(gains), rel=0.06)
    covered = np.mean(np.abs(np.array(gains) - truth) <= 1.959964 * np.array(ses))
    assert 0.93 < covered < 0.97


def test_gain_over_equal_split_by_hand_and_bad_input():
    g = gain_over_equal_split([4, 2], [2.0, 1.0], [2.0, 1.0])
    # equal split: 3 observations each at means 0.5 and 0.5 -> 3.0; collected 3.0
    assert (g.actual, g.equal_split, g.gained) == (3.0, 3.0, 0.0)
    assert g.se == pytest.approx(np.sqrt(1 * (1 / 3) / 4 + 1 * 0.5 / 2))
    assert g.interval() == pytest.approx((-1.959964 * g.se, 1.959964 * g.se))
    with pytest.raises(ValueError, match="n must be at least 2"):
        gain_over_equal_split([1, 5], [1.0, 2.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="shape"):
        gain_over_equal_split([3, 5], [1.0], [1.0])
