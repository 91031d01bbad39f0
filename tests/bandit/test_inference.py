"""Exact probability of being best and expected loss for Beta posteriors."""

from __future__ import annotations

import numpy as np
import pytest

from bandit.inference import expected_loss, probability_best


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
