"""Exact Thompson ranking probabilities against Monte Carlo and the Thompson allocation."""

from __future__ import annotations

import numpy as np
import pytest

from bandit import make_policy
from bandit.ranking import beta_ranking, policy_ranking


def monte_carlo(alpha: np.ndarray, beta: np.ndarray, k: int, n: int, seed: int) -> np.ndarray:
    draws = np.random.default_rng(seed).beta(alpha, beta, size=(n, alpha.size))
    order = np.argsort(-draws, axis=1)[:, :k]
    return np.stack([np.bincount(order[:, r], minlength=alpha.size) / n for r in range(k)], 1)


def test_matches_monte_carlo_on_peaked_posteriors() -> None:
    rng = np.random.default_rng(3)
    alpha = rng.uniform(2, 60, size=12)
    beta = rng.uniform(500, 5000, size=12)
    exact = beta_ranking(alpha, beta, 3)
    mc = monte_carlo(alpha, beta, 3, 400_000, seed=4)
    # Monte Carlo standard error is at most sqrt(0.25 / 4e5) = 8e-4.
    assert np.abs(exact - mc).max() < 4e-3
    assert np.allclose(exact.sum(axis=0), 1.0)


def test_first_position_is_the_thompson_allocation() -> None:
    policy = make_policy("thompson", 5, seed=0)
    policy.update_batch([0, 1, 1, 2, 3, 4, 4], [1.0, 0.0, 1.0, 0.0, 1.0, 1.0, 1.0])
    ranking = policy_ranking(policy, 3)
    assert np.allclose(ranking[:, 0], policy.allocation(), atol=1e-9)
    assert np.allclose(policy_ranking(policy, 1)[:, 0], policy.allocation())


def test_full_list_places_every_arm_once() -> None:
    p = beta_ranking(np.array([3.0, 1.0, 2.0, 5.0]), np.array([2.0, 4.0, 2.0, 1.0]), 4)
    assert np.allclose(p.sum(axis=1), 1.0, atol=1e-6)


def test_errors() -> None:
    with pytest.raises(ValueError, match="k"):
        beta_ranking(np.ones(3), np.ones(3), 4)
    with pytest.raises(ValueError, match="alpha"):
        beta_ranking(np.ones(3), -np.ones(3), 2)
    with pytest.raises(ValueError, match="ranking"):
        policy_ranking(make_policy("ucb1", 3, seed=0), 2)
