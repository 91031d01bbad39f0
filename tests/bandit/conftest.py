"""Shared helpers for the policy tests: a seeded Bernoulli simulation with expected regret."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from bandit import make_policy


def simulate_regret(
    name: str,
    means: np.ndarray,
    horizon: int,
    seed: int,
    *,
    change_at: int | None = None,
    means_after: np.ndarray | None = None,
    **params: object,
) -> float:
    """Expected regret of policy ``name`` on Bernoulli arms whose means change at
    ``change_at`` to ``means_after`` (the reversed means by default)."""
    # the environment's stream must differ from the policy's (a shared seed correlates them)
    rng = np.random.default_rng([seed, 0xE11])
    policy = make_policy(name, means.size, seed=seed, **params)
    u = rng.random(horizon)
    regret = 0.0
    current = means
    for t in range(horizon):
        if change_at is not None and t == change_at:
            current = means[::-1] if means_after is None else means_after
        arm = policy.select().arm
        regret += current.max() - current[arm]
        policy.update(arm, 1.0 if u[t] < current[arm] else 0.0)
    return regret


def uniform_regret(means: np.ndarray, horizon: int) -> float:
    """Expected regret of choosing arms uniformly at random (exact)."""
    return float(horizon * (means.max() - means.mean()))


@pytest.fixture
def regret() -> Callable[..., float]:
    return simulate_regret


def train(policy_name: str, n_arms: int, steps: int, seed: int = 0, **params: object):
    """A policy fed ``steps`` Bernoulli rewards from arms with increasing means."""
    policy = make_policy(policy_name, n_arms, seed=seed, **params)
    means = np.linspace(0.2, 0.6, n_arms)
    rng = np.random.default_rng(seed + 1000)
    for _ in range(steps):
        arm = policy.select().arm
        policy.update(arm, float(rng.random() < means[arm]))
    return policy
