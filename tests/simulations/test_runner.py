"""The runner: online and delayed feedback, regret on every round, thinning, grids, rows."""

from __future__ import annotations

import numpy as np
import pytest

from simulations.envs import Delayed, Stationary, linear_means, make_env, reversal
from simulations.runner import PolicySpec, curve_grid, iter_rows, run_grid, run_one

MEANS = linear_means(4, 0.1, 0.7)


@pytest.fixture
def recorder(factory) -> PolicySpec:
    return PolicySpec("recorder", factory=factory)


@pytest.fixture
def thompson(factory) -> PolicySpec:
    return PolicySpec("beta-thompson", factory=factory)


def test_online_run_selects_and_updates_once_per_round(recorders: list, recorder) -> None:
    env = reversal(MEANS, 200)
    result = run_one(env, recorder, seed=5)
    (policy,) = recorders
    assert policy.selects == 200 and policy.batches == []
    table = env.reward_table(5)
    # the update after the t-th select carries that round's reward for the chosen arm
    assert [(n, a) for n, a, _ in policy.updates] == [(t + 1, t % 4) for t in range(200)]
    assert [r for _, _, r in policy.updates] == [table[t, t % 4] for t in range(200)]
    np.testing.assert_array_equal(result.arms, np.arange(200) % 4)
    np.testing.assert_array_equal(result.rewards, table[np.arange(200), np.arange(200) % 4])
    np.testing.assert_allclose(result.regret, np.cumsum(env.regret(np.arange(200) % 4)))
    assert result.final_regret == pytest.approx(result.regret[-1])
    np.testing.assert_array_equal(result.steps, np.arange(1, 201))


@pytest.mark.parametrize(("delay", "batch"), [(10, None), (10, 3), (1, 1), (7, 20)])
def test_delayed_rewards_arrive_late_and_in_batches(
    recorders: list, recorder: PolicySpec, delay: int, batch: int | None
) -> None:
    env = Delayed(Stationary(MEANS, 300), delay, batch)
    run_one(env, recorder, seed=1)
    (policy,) = recorders
    assert policy.updates == [] and policy.selects == 300
    table = env.reward_table(1)
    delivered = 0
    for selects_before, arms, rewards in policy.batches:
        now = selects_before  # the round about to be decided
        assert now % env.batch == 0
        decisions = np.arange(delivered, delivered + arms.size)
        assert decisions[-1] <= now - delay, "a reward was delivered before it arrived"
        np.testing.assert_array_equal(arms, decisions % 4)
        np.testing.assert_array_equal(rewards, table[decisions, decisions % 4])
        delivered += arms.size
    # every reward that has arrived by the last delivery time has been delivered
    last_delivery = (299 // env.batch) * env.batch
    assert delivered == max(0, last_delivery - delay + 1)


def test_delay_of_one_every_round_matches_online_feedback(thompson: PolicySpec) -> None:
    env = Stationary(MEANS, 2_000)
    online = run_one(env, thompson, seed=3)
    delayed = run_one(Delayed(env, 1, 1), thompson, seed=3)
    np.testing.assert_array_equal(online.arms, delayed.arms)


def test_record_every_thins_rows_but_not_regret(thompson: PolicySpec) -> None:
    env = reversal(MEANS, 1_005)
    full = run_one(env, thompson, seed=2)
    thin = run_one(env, thompson, seed=2, record_every=100)
    assert thin.steps.tolist() == [*range(100, 1_001, 100), 1_005]
    np.testing.assert_allclose(thin.regret, full.regret[thin.steps - 1])
    np.testing.assert_array_equal(thin.arms, full.arms[thin.steps - 1])
    assert thin.final_regret == full.final_regret
    np.testing.assert_array_equal(thin.curve, full.curve)
    with pytest.raises(ValueError, match="record_every must be at least 1"):
        run_one(env, thompson, seed=2, record_every=0)


def test_every_policy_sees_the_same_rewards_for_a_seed(factory) -> None:
    env = Stationary(MEANS, 500)
    first = PolicySpec("fixed", {"arm": 2}, label="a", factory=factory)
    second = PolicySpec("fixed", {"arm": 2}, label="b", factory=factory)
    a, b = (run_one(env, spec, seed=9) for spec in (first, second))
    np.testing.assert_array_equal(a.rewards, b.rewards)
    assert (a.policy, b.policy) == ("a", "b")
    assert a.final_regret == pytest.approx(500 * (0.7 - 0.5))


def test_curve_grid_covers_the_horizon() -> None:
    grid = curve_grid(100_000, 500)
    assert grid[0] == 1 and grid[-1] == 100_000 and grid.size == 500
    assert curve_grid(3, 500).tolist() == [1, 2, 3]


def test_run_grid_yields_in_grid_order_and_rows_are_flat(
    thompson: PolicySpec, recorder: PolicySpec
) -> None:
    envs = [make_env("bernoulli", MEANS, 50), make_env("drift", MEANS, 50)]
    results = list(run_grid(envs, [thompson, recorder], [0, 1], jobs=1, progress=False))
    assert [(r.env, r.seed, r.policy) for r in results] == [
        (e, s, p)
        for e in ("bernoulli-stationary", "bernoulli-drift")
        for s in (0, 1)
        for p in ("beta-thompson", "recorder")
    ]
    rows = list(iter_rows(envs, [thompson], [0], jobs=1, progress=False, record_every=10))
    assert len(rows) == 2 * 5
    assert rows[0].keys() == {"env", "policy", "seed", "step", "arm", "reward", "regret"}
    assert rows[4]["step"] == 50 and rows[0]["env"] == "bernoulli-stationary"
    with pytest.raises(ValueError, match="jobs must be at least 1"):
        list(run_grid(envs, [thompson], [0], jobs=0, progress=False))


def test_parallel_processes_give_the_same_results_as_one(thompson: PolicySpec) -> None:
    envs = [reversal(MEANS, 3_000)]
    serial = list(run_grid(envs, [thompson], range(4), jobs=1, progress=False))
    parallel = list(run_grid(envs, [thompson], range(4), jobs=2, progress=False))
    assert [r.final_regret for r in serial] == [r.final_regret for r in parallel]
    assert len({r.final_regret for r in serial}) > 1, "seeds should give different runs"


def test_a_learning_policy_beats_round_robin(thompson: PolicySpec) -> None:
    env = Stationary((0.2, 0.8), 2_000)
    learner = [run_one(env, thompson, seed=s).final_regret for s in range(20)]
    uniform = 2_000 * 0.3
    assert sum(r < uniform / 5 for r in learner) >= 18


@pytest.mark.slow
def test_full_size_run_with_the_real_policies(tmp_path) -> None:
    """T = 100,000 on 2 processes with ``bandit``'s thompson and ucb1 (the CLI's defaults)."""
    from simulations.experiment import run_experiment

    env = make_env("bernoulli", linear_means(10, 0.02, 0.08), 100_000)
    out = run_experiment(
        [env],
        [PolicySpec("thompson"), PolicySpec("ucb1")],
        range(2),
        tmp_path,
        jobs=2,
        record_every=1_000,
        progress=False,
        plots=False,
    )
    assert out.rows_written == 2 * 2 * 100
    regret = {s["policy"]: s["regret_mean"] for s in out.summary}
    assert regret["thompson"] < regret["ucb1"] and regret["thompson"] < 600
