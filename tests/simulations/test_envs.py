"""Environments: shapes, seeding, reversal, drift, delays and expected regret."""

from __future__ import annotations

import numpy as np
import pytest

from simulations.envs import (
    ENVIRONMENTS,
    Delayed,
    Drift,
    Piecewise,
    Stationary,
    linear_means,
    make_env,
    parse_means,
    reversal,
)

MEANS = linear_means(5, 0.1, 0.5)


@pytest.mark.parametrize("kind", ENVIRONMENTS)
def test_every_environment_has_T_by_K_tables(kind: str) -> None:
    env = make_env(kind, MEANS, 200, delay=7)
    assert env.n_arms == 5 and env.horizon == 200
    assert env.mean_table().shape == (200, 5)
    assert env.best_means().shape == (200,)
    table = env.reward_table(seed=3)
    assert table.shape == (200, 5) and table.dtype == np.float64
    if "gaussian" not in kind:
        assert set(np.unique(table)) <= {0.0, 1.0}


@pytest.mark.parametrize("kind", ENVIRONMENTS)
def test_reward_table_is_a_function_of_the_seed(kind: str) -> None:
    env = make_env(kind, MEANS, 300)
    np.testing.assert_array_equal(env.reward_table(1), env.reward_table(1))
    np.testing.assert_array_equal(make_env(kind, MEANS, 300).reward_table(1), env.reward_table(1))
    assert not np.array_equal(env.reward_table(1), env.reward_table(2))


def test_reward_stream_is_not_the_policy_stream() -> None:
    """A policy seeded with the same integer must not reuse the environment's random numbers."""
    env = Stationary((0.5,), 1000)
    same_stream = (np.random.default_rng(7).random((1000, 1)) < 0.5).astype(float)
    assert not np.array_equal(env.reward_table(7), same_stream)


def test_bernoulli_rewards_match_their_means() -> None:
    env = Stationary((0.05, 0.5, 0.9), 40_000)
    np.testing.assert_allclose(env.reward_table(0).mean(axis=0), env.means, atol=0.01)


def test_gaussian_rewards_have_the_means_and_sigma() -> None:
    env = make_env("gaussian", (0.0, 1.0), 40_000, sigma=0.3)
    table = env.reward_table(0)
    np.testing.assert_allclose(table.mean(axis=0), (0.0, 1.0), atol=0.01)
    np.testing.assert_allclose(table.std(axis=0), 0.3, rtol=0.02)


def test_reversal_swaps_the_best_and_worst_arm_at_half_time() -> None:
    env = reversal(MEANS, 100)
    table = env.mean_table()
    np.testing.assert_array_equal(table[:50], np.broadcast_to(MEANS, (50, 5)))
    np.testing.assert_array_equal(table[50:], np.broadcast_to(MEANS[::-1], (50, 5)))
    assert table[49].argmax() == 4 and table[50].argmax() == 0
    assert env.name == "bernoulli-reversal"
    rewards = Piecewise(MEANS, 40_000, changes=((20_000, MEANS[::-1]),)).reward_table(0)
    np.testing.assert_allclose(rewards[20_000:].mean(axis=0), MEANS[::-1], atol=0.015)


def test_reversal_point_is_configurable() -> None:
    table = make_env("bernoulli-reversal", MEANS, 100, change_at=0.25).mean_table()
    assert table[24].argmax() == 4 and table[25].argmax() == 0


def test_drift_moves_each_mean_linearly_to_its_reverse() -> None:
    env = Drift(MEANS, 101)
    table = env.mean_table()
    np.testing.assert_allclose(table[0], MEANS)
    np.testing.assert_allclose(table[-1], MEANS[::-1])
    np.testing.assert_allclose(table[50], np.full(5, 0.3))
    steps = np.diff(table, axis=0)
    np.testing.assert_allclose(steps, np.broadcast_to(steps[0], steps.shape), atol=1e-12)
    assert table[:40].argmax(axis=1).tolist() == [4] * 40
    assert table[61:].argmax(axis=1).tolist() == [0] * 40


def test_delayed_wraps_the_base_environment() -> None:
    base = Stationary(MEANS, 500)
    env = Delayed(base, 25)
    assert (env.delay, env.batch, env.n_arms, env.horizon) == (25, 25, 5, 500)
    assert Delayed(base, 25, batch_every=5).batch == 5
    assert base.delay == 0 and base.batch == 1
    np.testing.assert_array_equal(env.reward_table(4), base.reward_table(4))
    np.testing.assert_array_equal(env.mean_table(), base.mean_table())
    assert env.name == "bernoulli-stationary-delay25"


def test_expected_regret_uses_means_not_rewards() -> None:
    env = reversal((0.2, 0.6), 4)
    np.testing.assert_allclose(env.regret(np.array([0, 1, 0, 1])), [0.4, 0.0, 0.0, 0.4])
    with pytest.raises(ValueError, match="arms must have shape"):
        env.regret(np.array([0, 1]))


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Stationary((0.5, 1.5), 10), "Bernoulli means must lie in"),
        (lambda: Stationary((0.5,), 0), "horizon must be at least 1"),
        (lambda: Stationary((), 10), "at least one arm"),
        (lambda: Stationary((0.5,), 10, noise="poisson"), "noise must be"),  # type: ignore[arg-type]
        (lambda: Stationary((0.5,), 10, noise="gaussian", sigma=0.0), "sigma must be positive"),
        (lambda: Piecewise((0.5,), 10, changes=((10, (0.1,)),)), "change round"),
        (lambda: Piecewise((0.5,), 10, changes=((5, (0.1, 0.2)),)), "each change must give"),
        (lambda: Drift((0.5, 0.1), 10, end_means=(0.1,)), "end_means must give"),
        (lambda: Delayed(Stationary((0.5,), 10), 0), "delay must be at least 1"),
        (lambda: make_env("poisson", (0.5,), 10), "unknown environment 'poisson'"),
        (lambda: parse_means("0.1,0.2", 3), "means lists 2 values but arms is 3"),
        (lambda: linear_means(0), "n_arms must be at least 1"),
    ],
)
def test_bad_configurations_fail_with_a_sentence(build, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()


def test_parse_means() -> None:
    assert parse_means("0.02:0.08", 4) == pytest.approx((0.02, 0.04, 0.06, 0.08))
    assert parse_means("0.3,0.1", 2) == (0.3, 0.1)
