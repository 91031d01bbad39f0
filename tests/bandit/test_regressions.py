"""Regression tests built from the reproducers of bugs found in the policy engine."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bandit import BatchSelection, from_state_dict, make_policy
from bandit.stats import ArmStats, DiscountedStats, SlidingWindowStats
from bandit.thompson import GaussianThompson
from bandit.ucb import SCALAR_ARMS, _kl_root, kl_ucb_index


def test_exp3_batch_started_during_burn_in_learns_after_it_ends() -> None:
    seq = make_policy("exp3", 2, seed=0, burn_in=1)
    bat = make_policy("exp3", 2, seed=0, burn_in=1)
    arms, rewards = [0, 1, 0, 1, 0, 1], [1.0] * 6
    for a, r in zip(arms, rewards, strict=True):
        seq.update(a, r)
    bat.update_batch(arms, rewards)
    assert seq.log_weights == pytest.approx([0.1000289, 0.10240271], abs=1e-7)
    np.testing.assert_allclose(bat.log_weights, seq.log_weights, rtol=1e-12)


@pytest.mark.parametrize("burn_in", [0, 2, 5])
def test_exp3_batch_equals_sequential_updates_under_controls(burn_in: int) -> None:
    rng = np.random.default_rng(1)
    arms = rng.integers(0, 3, 60)
    rewards = (rng.random(60) < 0.5).astype(float)
    seq = make_policy("exp3", 3, seed=0, burn_in=burn_in, floors=0.1)
    bat = make_policy("exp3", 3, seed=0, burn_in=burn_in, floors=0.1)
    for a, r in zip(arms.tolist(), rewards.tolist(), strict=True):
        seq.update(a, r)
    bat.update_batch(arms[:25], rewards[:25])
    bat.update_batch(arms[25:], rewards[25:])
    np.testing.assert_allclose(bat.log_weights, seq.log_weights, rtol=1e-12)


def test_gaussian_thompson_refuses_unrepresentable_rewards_and_changes_nothing() -> None:
    p = make_policy("gaussian-thompson", 2, seed=0)
    p.update(0, 0.1)
    p.update(1, 0.2)
    before = json.dumps(p.state_dict())
    low, high = p.reward_range
    assert (low, high) == (-GaussianThompson.max_abs_reward, GaussianThompson.max_abs_reward)
    for bad in (1e160, -1e160, 2 * high):
        with pytest.raises(ValueError, match="reward"):
            p.update(0, bad)
        with pytest.raises(ValueError, match="rewards"):
            p.update_batch([0], [bad])
    assert json.dumps(p.state_dict()) == before
    assert np.isfinite(p.allocation()).all() and np.isfinite(p.select().propensity)
    # the bound itself is accepted and stays finite
    p.update(0, high)
    p.update(0, low)
    assert np.isfinite(p.allocation()).all()


@pytest.mark.parametrize("stats", [ArmStats(1), DiscountedStats(1, 0.9999), SlidingWindowStats(1)])
def test_variance_keeps_its_precision_for_large_means(stats: ArmStats) -> None:
    rewards = 1e8 + np.random.default_rng(0).normal(0.0, 1.0, 2_000)
    for r in rewards[:1_000].tolist():
        stats.update(0, r)
    stats.update_batch(np.zeros(1_000, dtype=np.int64), rewards[1_000:])
    w = (
        stats.gamma ** np.arange(rewards.size - 1, -1, -1.0)
        if isinstance(stats, DiscountedStats)
        else np.ones(rewards.size)
    )
    mean = np.sum(w * rewards) / w.sum()
    true = np.sum(w * (rewards - mean) ** 2) / w.sum()  # about 0.96..1.0
    assert stats.variances[0] == pytest.approx(true, rel=1e-6)


def test_gaussian_thompson_posterior_near_1e8_matches_the_sample_variance() -> None:
    p = make_policy("gaussian-thompson", 2, seed=0)
    x = 1e8 + np.random.default_rng(3).normal(0.0, 1.0, 500)
    p.update_batch(np.zeros(500, dtype=np.int64), x)
    assert p.stats.variances[0] == pytest.approx(x.var(), rel=1e-6)


def test_old_states_without_shift_still_load() -> None:
    p = make_policy("ucb1-tuned", 2, seed=0)
    p.update_batch([0, 0, 1, 1], [0.0, 1.0, 1.0, 1.0])
    state = p.state_dict()
    del state["stats"]["shift"]  # a state saved before the shifted sums
    state["stats"]["sumsq"] = [1.0, 2.0]  # plain sums of squares
    clone = from_state_dict(state)
    np.testing.assert_allclose(clone.stats.variances, [0.25, 0.0], atol=1e-15)


def _kl_near(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Bernoulli kl(p, q) written in q - p, accurate when q is very close to p."""
    delta = q - p
    return p * np.log1p(-delta / q) + (1 - p) * np.log1p(delta / (1 - q))


def test_kl_ucb_index_is_accurate_for_tiny_levels() -> None:
    p, n = 22353 / 106013, 106013.0
    level = 3.5296427676359037e-12
    got = float(kl_ucb_index(np.array([p]), np.array([n]), level)[0])
    # for d -> 0 the root is p + sqrt(2 p (1 - p) d) up to O(d)
    expected = p + np.sqrt(2 * p * (1 - p) * level / n)
    assert got == pytest.approx(expected, abs=1e-12)
    assert got == pytest.approx(0.2108515, abs=1e-7)
    # the array path (many arms) and the scalar path agree on tiny and ordinary levels
    rng = np.random.default_rng(0)
    means = np.concatenate([rng.random(40), [p, 0.0, 1e-300, 0.999]])
    counts = np.concatenate([rng.random(40) * 1e5 + 1, [n, 10.0, 1e6, 50.0]])
    levels = np.concatenate([10.0 ** rng.uniform(-12, 1.3, 40), [level, 1.0, 1.0, 1.0]])
    assert means.size > SCALAR_ARMS
    vec = kl_ucb_index(means, counts, levels)
    scalar = np.array(
        [_kl_root(m, c, lv, 40) for m, c, lv in zip(means, counts, levels, strict=True)]
    )
    np.testing.assert_allclose(vec, scalar, rtol=0, atol=1e-12)
    # where level / counts is tiny the root still solves the equation (the direct form of
    # the divergence is pure rounding noise there)
    tiny = (levels / counts < 1e-9) & (means > 0) & (means < 0.99)
    assert tiny.sum() >= 5
    solved = counts[tiny] * _kl_near(means[tiny], vec[tiny]) / levels[tiny]
    np.testing.assert_allclose(solved, 1.0, rtol=1e-4)


def test_update_batch_refuses_bool_arms_like_update() -> None:
    policy = make_policy("thompson", 2)
    with pytest.raises(ValueError, match="arm"):
        policy.update(True, 1.0)
    for arms in ([0, True], [np.True_, 0], np.array([False, True])):
        with pytest.raises(ValueError, match="arms"):
            policy.update_batch(arms, [0.0, 1.0])
    assert policy.counts.sum() == 0


@pytest.mark.parametrize("floors", [0.1, [0.1, 0.1, 0.1]])
def test_scalar_floors_apply_to_arms_added_later(floors) -> None:
    policy = make_policy("kl-ucb", 3, seed=0, floors=floors, caps=0.9)
    new = policy.add_arm()
    expected = 0.1 if np.ndim(floors) == 0 else 0.0
    assert policy.constraints.floors[new] == expected
    assert policy.constraints.caps[new] == 0.9
    policy.update_batch([0, 1, 2, 3] * 5, [1.0, 0.0, 0.0, 0.0] * 5)
    assert policy.allocation()[new] >= expected - 1e-12
    clone = from_state_dict(json.loads(json.dumps(policy.state_dict())))
    assert np.array_equal(clone.constraints.floors, policy.constraints.floors)
    assert clone.add_arm() == 4 and clone.constraints.floors[4] == expected


def test_add_arm_with_an_infeasible_floor_changes_nothing() -> None:
    policy = make_policy("thompson", 3, seed=0, floors=0.3)
    before = json.dumps(policy.state_dict())
    with pytest.raises(ValueError, match="floors"):
        policy.add_arm()
    assert policy.n_arms == 3 and json.dumps(policy.state_dict()) == before


def test_batch_selection_is_lazy_and_unpacks() -> None:
    policy = make_policy("thompson", 3, seed=0)
    policy.update_batch([0, 1, 2] * 20, [1.0, 0.0, 0.0] * 20)
    batch = policy.select_batch(50)
    assert isinstance(batch, BatchSelection) and len(batch) == 50
    assert batch._propensities is None  # nothing computed until read
    arms, props = batch
    assert arms is batch.arms and props is batch.propensities
    np.testing.assert_allclose(props, policy.allocation()[arms], rtol=1e-12)
    with pytest.raises(ValueError, match="policy or its propensities"):
        BatchSelection(arms)
