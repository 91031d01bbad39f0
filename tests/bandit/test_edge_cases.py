"""Edge cases: failed operations change nothing, controls reach every learner, exact seeds."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bandit import from_state_dict, make_policy


def test_infeasible_remove_arm_leaves_the_policy_intact() -> None:
    policy = make_policy("thompson", 3, seed=0, caps=0.4)
    before = policy.state_dict()
    with pytest.raises(ValueError, match="caps"):
        policy.remove_arm(0)  # two arms capped at 0.4 cannot carry all traffic
    assert policy.state_dict() == before
    assert np.isclose(policy.allocation().sum(), 1.0)


def test_bool_arm_is_rejected_and_bool_rewards_count_as_zero_or_one() -> None:
    policy = make_policy("ucb1", 3, seed=0)
    with pytest.raises(ValueError, match="arm"):
        policy.update(True, 1.0)
    with pytest.raises(ValueError, match="arm"):
        policy.update(np.True_, 1.0)  # type: ignore[arg-type]
    policy.update(1, True)
    policy.update(1, np.False_)  # type: ignore[arg-type]
    assert policy.counts.tolist() == [0.0, 2.0, 0.0]
    assert policy.means[1] == 0.5


def test_batch_input_is_checked_like_single_updates() -> None:
    policy = make_policy("thompson", 3, seed=0)
    with pytest.raises(ValueError, match="rewards"):
        policy.update_batch([0], ["0.5"])
    with pytest.raises(ValueError, match="arms"):
        policy.update_batch([1.0], [0.5])
    with pytest.raises(ValueError, match="floors"):
        make_policy("thompson", 3, floors=[0.1, "x", 0.1])
    with pytest.raises(ValueError, match="window"):
        make_policy("sliding-window-ucb", 3, window=10**12)
    assert policy.version == 0


def test_large_seeds_stay_exact() -> None:
    a = make_policy("thompson", 3, seed=2**60 + 1)
    b = make_policy("thompson", 3, seed=2**60)
    assert a.seed == 2**60 + 1
    assert not np.array_equal(a.select_batch(200).arms, b.select_batch(200).arms)


def test_exp3_learns_under_floors() -> None:
    # the worst arm has a 60% floor; EXP3 must still put the rest on the best arm
    means = np.array([0.6, 0.5, 0.4])
    policy = make_policy("exp3", 3, seed=1, floors=[0.0, 0.0, 0.6])
    rng = np.random.default_rng([1, 7])
    for _ in range(20_000):
        arm = policy.select().arm
        policy.update(arm, float(rng.random() < means[arm]))
    alloc = policy.allocation()
    assert alloc[0] > 0.3 and alloc[1] < 0.05


def test_state_of_other_parameters_is_refused() -> None:
    state = make_policy("discounted-thompson", 3, seed=0, gamma=0.99).state_dict()
    other = make_policy("discounted-thompson", 3, seed=0, gamma=0.999)
    with pytest.raises(ValueError, match="params"):
        other.load_state_dict(state)
    assert from_state_dict(json.loads(json.dumps(state))).params["gamma"] == 0.99


def test_stale_selection_repr_does_not_raise() -> None:
    policy = make_policy("thompson", 2, seed=0)
    s = policy.select()
    policy.update(s.arm, 1.0)
    assert "propensity=?" in repr(s)
