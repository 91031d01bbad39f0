"""Replay of learning policies: Li et al.'s equivalence with the online run, and the paths."""

from __future__ import annotations

import numpy as np
import pytest

from bandit import make_policy
from simulations.envs import make_env
from simulations.logged import LoggedFeedback
from simulations.replay import replay
from simulations.synthetic_logs import bernoulli_log, uniform_log_from_table

MEANS = (0.1, 0.3, 0.5, 0.7)
STEPS = 150


def online_total(table: np.ndarray, seed: int) -> tuple[float, int]:
    policy = make_policy("thompson", table.shape[1], seed=seed)
    total, best = 0.0, 0
    for t in range(STEPS):
        arm = policy.select().arm
        policy.update(arm, float(table[t, arm]))
        total += table[t, arm]
        best += arm == 3
    return total, best


def replay_total(table: np.ndarray, seed: int, batch: int = 1) -> tuple[float, int]:
    log = uniform_log_from_table(table, seed=seed + 50_000)
    result = replay(make_policy("thompson", table.shape[1], seed=seed + 90_000), log, batch=batch)
    assert result.n_matched >= STEPS
    kept = np.flatnonzero(result.matched)[:STEPS]
    return float(log.rewards[kept].sum()), int((log.actions[kept] == 3).sum())


@pytest.mark.slow
def test_replay_on_a_uniform_log_matches_the_online_run() -> None:
    """Over 300 reward tables, the first 150 counted rounds of the replay earn what 150
    online rounds earn (within 4 standard errors), and pick the best arm as often."""
    env = make_env("bernoulli", MEANS, horizon=4 * STEPS * 3)
    online, replayed = [], []
    for seed in range(300):
        table = env.reward_table(seed)
        online.append(online_total(table, seed))
        replayed.append(replay_total(table, seed))
    on, re = np.asarray(online), np.asarray(replayed)
    for col in range(2):
        diff = on[:, col].mean() - re[:, col].mean()
        se = np.sqrt(on[:, col].var(ddof=1) / len(on) + re[:, col].var(ddof=1) / len(re))
        assert abs(diff) < 4 * se, (col, on[:, col].mean(), re[:, col].mean(), se)


def test_exact_path_learns_only_matched_rounds_and_records_allocations() -> None:
    log = bernoulli_log(np.array(MEANS), np.full(4, 0.25), 1000, seed=1)
    policy = make_policy("thompson", 4, seed=2)
    result = replay(policy, log, record_allocation=True)
    assert policy.pulls.sum() == result.n_matched
    assert 175 < result.n_matched < 325  # about n / K at first, more as it learns the log
    assert result.value == pytest.approx(log.rewards[result.matched].mean())
    assert result.allocations is not None and result.state_of_row is not None
    assert result.allocations.shape == (result.n_matched + 1, 4)
    assert np.all(np.diff(result.state_of_row) >= 0)
    per_row = result.allocation_per_row()
    assert per_row.shape == (1000, 4) and np.allclose(per_row.sum(axis=1), 1.0)
    # the state before each row counts the matches strictly before it
    before = np.concatenate([[0], np.cumsum(result.matched)[:-1]])
    assert np.array_equal(result.state_of_row, before)


def test_batch_path_updates_once_per_block() -> None:
    log = bernoulli_log(np.array(MEANS), np.full(4, 0.25), 1000, seed=3)
    policy = make_policy("thompson", 4, seed=4)
    result = replay(policy, log, batch=100, record_allocation=True)
    assert policy.pulls.sum() == result.n_matched
    assert result.allocations is not None and result.allocations.shape[0] <= 11
    assert result.state_of_row is not None and result.state_of_row[99] == 0


def test_progress_and_errors() -> None:
    log = LoggedFeedback(
        actions=[0, 1] * 50, rewards=[1.0, 0.0] * 50, propensities=[0.5] * 100, n_actions=2
    )
    seen: list[int] = []
    replay(make_policy("ucb1", 2, seed=0), log, progress=seen.append)
    assert sum(seen) == 100
    with pytest.raises(ValueError, match="arms"):
        replay(make_policy("ucb1", 3, seed=0), log)
    with pytest.raises(ValueError, match="batch"):
        replay(make_policy("ucb1", 2, seed=0), log, batch=0)
    with pytest.raises(ValueError, match="record_allocation"):
        replay(make_policy("ucb1", 2, seed=0), log).allocation_per_row()
