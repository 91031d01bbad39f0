"""One conformance check run over every registered policy (river's test_policies, sklearn's
parametrize_with_checks): valid selections, propensities, determinism, state, errors, arms."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from bandit import POLICIES, REGISTRY, StalePropensityError, from_state_dict, make_policy
from tests.bandit.conftest import train

ALL = pytest.mark.parametrize("name", POLICIES)


def _frequencies_match(arms: np.ndarray, alloc: np.ndarray) -> None:
    """Empirical frequencies of ``arms`` equal ``alloc`` within 5 standard errors (+1e-3 for
    the quadrature of the Thompson family)."""
    n = arms.size
    freq = np.bincount(arms, minlength=alloc.size) / n
    tol = 5 * np.sqrt(alloc * (1 - alloc) / n) + 1e-3
    assert np.all(np.abs(freq - alloc) <= tol), (freq.round(4), alloc.round(4))


@ALL
def test_selections_are_valid_arms(name: str) -> None:
    policy = train(name, 4, 300)
    for _ in range(200):
        s = policy.select()
        assert isinstance(s.arm, int) and 0 <= s.arm < 4
        assert 0.0 < s.propensity <= 1.0
    batch = policy.select_batch(1000).arms
    assert batch.dtype == np.int64 and batch.shape == (1000,)
    assert batch.min() >= 0 and batch.max() < 4
    empty = policy.select_batch(0)
    assert empty.arms.shape == (0,) and empty.propensities.shape == (0,) and len(empty) == 0


@ALL
@pytest.mark.parametrize(
    "controls",
    [
        {},
        {"floors": 0.1},
        {"caps": 0.4, "floors": [0.05, 0.0, 0.0, 0.1]},
        {"control_arm": 0, "control_share": 0.3},
        {"burn_in": 500},
    ],
    ids=["plain", "floors", "caps", "control", "burn-in"],
)
def test_propensities_sum_to_one_and_match_frequencies(name: str, controls: dict) -> None:
    policy = train(name, 4, 400, **controls)
    alloc = policy.allocation()
    assert alloc.shape == (4,)
    assert math.isclose(alloc.sum(), 1.0, abs_tol=1e-9)
    assert np.all(alloc >= 0)
    if "floors" in controls:
        floors = np.broadcast_to(controls["floors"], (4,))
        assert np.all(alloc >= floors - 1e-9)
    if "caps" in controls:
        assert np.all(alloc <= controls["caps"] + 1e-9)
    if "control_arm" in controls:
        assert math.isclose(alloc[0], controls["control_share"], abs_tol=1e-9)
    if "burn_in" in controls:
        assert np.allclose(alloc[policy.pulls >= 500], 0.0)
    # single selections made in one unchanged state
    version = policy.version
    arms = np.array([policy.select().arm for _ in range(4000)])
    assert policy.version == version
    _frequencies_match(arms, alloc)
    # a selection's propensity is its arm's allocation
    s = policy.select()
    assert s.propensity == pytest.approx(alloc[s.arm])
    # a batch's propensities are the allocation of its state, gathered at its arms
    arms, propensities = policy.select_batch(20_000)
    assert propensities.dtype == np.float64 and propensities.shape == arms.shape
    assert np.allclose(propensities, alloc[arms], rtol=1e-12, atol=0.0)
    _frequencies_match(arms, alloc)


@ALL
def test_propensity_read_after_update_is_refused(name: str) -> None:
    policy = train(name, 3, 50)
    s = policy.select()
    policy.update(s.arm, 1.0)
    with pytest.raises(StalePropensityError):
        _ = s.propensity
    batch = policy.select_batch(10)
    policy.update_batch(batch.arms, np.ones(len(batch)))
    with pytest.raises(StalePropensityError):
        _ = batch.propensities


@ALL
def test_seeded_determinism(name: str) -> None:
    a, b = train(name, 5, 500, seed=3), train(name, 5, 500, seed=3)
    assert [a.select().arm for _ in range(100)] == [b.select().arm for _ in range(100)]
    assert np.array_equal(a.select_batch(500).arms, b.select_batch(500).arms)
    assert np.array_equal(a.allocation(), b.allocation())


@ALL
@pytest.mark.parametrize("controls", [{}, {"floors": 0.05, "burn_in": 3}])
def test_state_round_trip_is_exact(name: str, controls: dict) -> None:
    policy = train(name, 4, 700, **controls)
    state = json.loads(json.dumps(policy.state_dict()))  # JSON-safe
    clone = from_state_dict(state)
    assert clone.params == policy.params
    left: list[tuple[int, float]] = []
    right: list[tuple[int, float]] = []
    for p, out in ((policy, left), (clone, right)):
        rng = np.random.default_rng(9)
        # with controls every decision reads the allocation (a quadrature for Thompson)
        for step in range(200 if controls else 1000):
            s = p.select()
            # propensities are compared on a sample of steps: each costs a quadrature
            out.append((s.arm, s.propensity if step % 50 == 0 else -1.0))
            p.update(s.arm, float(rng.random() < 0.4))
    assert left == right
    assert np.array_equal(policy.allocation(), clone.allocation())
    assert policy.state_dict() == clone.state_dict()


@ALL
def test_bad_input_raises_value_error_naming_the_argument(name: str) -> None:
    policy = make_policy(name, 3, seed=0)
    for bad in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(ValueError, match="reward"):
            policy.update(0, bad)
    if policy.reward_range == (0.0, 1.0):
        for bad in (-0.1, 1.5):
            with pytest.raises(ValueError, match="reward"):
                policy.update(0, bad)
    for arm in (3, -1, 1.5, "a"):
        with pytest.raises(ValueError, match="arm"):
            policy.update(arm, 0.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="reward"):
        policy.update(0, "1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="arms"):
        policy.update_batch([0, 5], [0.0, 1.0])
    with pytest.raises(ValueError, match="rewards"):
        policy.update_batch([0, 1], [0.0, float("nan")])
    with pytest.raises(ValueError, match="same length"):
        policy.update_batch([0, 1], [0.0])
    with pytest.raises(ValueError, match="unknown parameter 'nonsense'"):
        make_policy(name, 3, nonsense=1)
    with pytest.raises(ValueError, match="n_arms"):
        make_policy(name, 0)
    with pytest.raises(ValueError, match="floors"):
        make_policy(name, 3, floors=[0.5, 0.5, 0.5])
    with pytest.raises(ValueError, match="control_arm"):
        make_policy(name, 3, control_arm=7, control_share=0.1)
    with pytest.raises(ValueError, match="burn_in"):
        make_policy(name, 3, burn_in=-1)
    with pytest.raises(ValueError, match="remove"):
        make_policy(name, 1).remove_arm(0)
    # nothing learned from the rejected input
    assert policy.version == 0 and policy.counts.sum() == 0


BAD_HYPER = {
    "ucb1": {"alpha": -1.0},
    "ucb1-tuned": None,
    "kl-ucb": {"c": -1.0},
    "bayes-ucb": {"prior_alpha": 0.0},
    "thompson": {"prior_beta": -2.0},
    "gaussian-thompson": {"prior_kappa": 0.0},
    "epsilon-greedy": {"epsilon": 1.5},
    "softmax": {"temperature": 0.0},
    "exp3": {"gamma": 0.0},
    "top-two-thompson": {"beta": 2.0},
    "discounted-thompson": {"gamma": 1.5},
    "discounted-ucb": {"gamma": 0.0},
    "sliding-window-thompson": {"window": 0},
    "sliding-window-ucb": {"window": -5},
    "discounted-kl-ucb": {"gamma": 1.01},
    "sliding-window-kl-ucb": {"window": 0},
    "glr-thompson": {"delta": 0.0},
}


@ALL
def test_out_of_range_hyper_parameter_is_named(name: str) -> None:
    bad = BAD_HYPER[name]
    if bad is None:
        assert REGISTRY[name].default_params() == {}
        return
    (param,) = bad
    with pytest.raises(ValueError, match=param):
        make_policy(name, 3, **bad)


@ALL
def test_added_arm_is_explored_and_removed_arm_disappears(name: str) -> None:
    policy = train(name, 3, 3000)
    new = policy.add_arm()
    assert new == 3 and policy.n_arms == 4
    assert policy.allocation().shape == (4,)
    chosen = []
    rng = np.random.default_rng(0)
    for _ in range(300):
        arm = policy.select().arm
        chosen.append(arm)
        policy.update(arm, float(rng.random() < 0.4))
    assert new in chosen, f"{name} never tried the added arm"
    policy.remove_arm(0)
    assert policy.n_arms == 3
    assert policy.allocation().shape == (3,)
    assert policy.select_batch(100).arms.max() < 3
    clone = from_state_dict(json.loads(json.dumps(policy.state_dict())))
    assert [clone.select().arm for _ in range(20)] == [policy.select().arm for _ in range(20)]


def test_selection_unpacks_to_arm_and_propensity() -> None:
    policy = make_policy("ucb1", 2, seed=0)
    arm, propensity = policy.select()
    assert arm in (0, 1) and propensity == pytest.approx(0.5)
