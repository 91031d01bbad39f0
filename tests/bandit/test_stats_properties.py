"""Property tests (hypothesis) for the update math of the per-arm statistics and controls."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bandit import make_policy
from bandit.allocation import Constraints
from bandit.stats import ArmStats, ChangePointStats, DiscountedStats, SlidingWindowStats

N_ARMS = 4
observations = st.lists(
    st.tuples(
        st.integers(0, N_ARMS - 1),
        st.one_of(st.sampled_from([0.0, 1.0]), st.floats(0.0, 1.0, allow_nan=False)),
    ),
    min_size=0,
    max_size=120,
)


def _make(kind: str):
    return {
        "cumulative": lambda: ArmStats(N_ARMS),
        "discounted": lambda: DiscountedStats(N_ARMS, gamma=0.97),
        "window": lambda: SlidingWindowStats(N_ARMS, window=17),
        "change-point": lambda: ChangePointStats(N_ARMS, delta=0.05, check_every=1),
    }[kind]()


def _same(a: ArmStats, b: ArmStats) -> None:
    for name in ("counts", "sums", "sumsq", "means"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-9, atol=1e-9)
    assert abs(a.total - b.total) < 1e-9
    assert a.unseen == b.unseen


@settings(max_examples=80, deadline=None)
@given(obs=observations, split=st.integers(0, 120))
def test_batch_update_equals_sequential_updates(obs, split) -> None:
    for kind in ("cumulative", "discounted", "window", "change-point"):
        seq, bat = _make(kind), _make(kind)
        for a, r in obs:
            seq.update(a, r)
        arms = np.array([a for a, _ in obs], dtype=np.int64)
        rewards = np.array([r for _, r in obs], dtype=np.float64)
        bat.update_batch(arms[:split], rewards[:split])
        bat.update_batch(arms[split:], rewards[split:])
        _same(seq, bat)


@settings(max_examples=80, deadline=None)
@given(obs=observations, gamma=st.floats(0.5, 1.0, exclude_min=True))
def test_discounted_statistics_equal_their_closed_form(obs, gamma) -> None:
    stats = DiscountedStats(N_ARMS, gamma=gamma)
    for a, r in obs:
        stats.update(a, r)
    n = len(obs)
    weights = gamma ** np.arange(n - 1, -1, -1, dtype=np.float64)
    counts = np.zeros(N_ARMS)
    sums = np.zeros(N_ARMS)
    for w, (a, r) in zip(weights, obs, strict=True):
        counts[a] += w
        sums[a] += w * r
    np.testing.assert_allclose(stats.counts, counts, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(stats.sums, sums, rtol=1e-9, atol=1e-12)
    assert abs(stats.total - weights.sum()) < 1e-9


@settings(max_examples=80, deadline=None)
@given(obs=observations, window=st.integers(1, 30))
def test_window_statistics_equal_the_last_observations(obs, window) -> None:
    stats = SlidingWindowStats(N_ARMS, window=window)
    for a, r in obs:
        stats.update(a, r)
    kept = obs[-window:] if obs else []
    counts = np.bincount([a for a, _ in kept], minlength=N_ARMS).astype(float)
    sums = np.bincount([a for a, _ in kept], weights=[r for _, r in kept], minlength=N_ARMS).astype(
        float
    )
    np.testing.assert_allclose(stats.counts, counts, atol=1e-9)
    np.testing.assert_allclose(stats.sums, sums, atol=1e-9)
    assert stats.total == len(kept)


@settings(max_examples=60, deadline=None)
@given(obs=observations)
def test_policy_batch_update_equals_sequential(obs) -> None:
    arms = [a for a, _ in obs]
    rewards = [r for _, r in obs]
    for name in ("ucb1", "thompson", "discounted-thompson", "sliding-window-ucb"):
        seq, bat = make_policy(name, N_ARMS, seed=1), make_policy(name, N_ARMS, seed=1)
        for a, r in obs:
            seq.update(a, r)
        bat.update_batch(arms, rewards)
        _same(seq.stats, bat.stats)
        np.testing.assert_array_equal(seq.pulls, bat.pulls)


per_arm = st.lists(st.floats(0.0, 1.0), min_size=N_ARMS, max_size=N_ARMS)


@settings(max_examples=200, deadline=None)
@given(
    p=per_arm,
    floors=st.floats(0.0, 0.25),
    cap=st.floats(0.3, 1.0),
    control=st.one_of(st.none(), st.integers(0, N_ARMS - 1)),
    share=st.floats(0.0, 0.2),
)
def test_constraints_give_a_feasible_allocation(p, floors, cap, control, share) -> None:
    share = share if control is not None else 0.0
    kwargs = {"floors": floors, "caps": cap, "control_arm": control, "control_share": share}
    n_others = N_ARMS - (control is not None)
    if cap * n_others < 1.0 - share - 1e-12:
        with pytest.raises(ValueError, match="caps"):
            Constraints.build(N_ARMS, **kwargs)
        return
    c = Constraints.build(N_ARMS, **kwargs)
    base = np.asarray(p)
    base = base / base.sum() if base.sum() > 0 else np.full(N_ARMS, 1 / N_ARMS)
    q = c.apply(base)
    assert abs(q.sum() - 1.0) < 1e-9
    others = [i for i in range(N_ARMS) if i != control]
    assert np.all(q[others] >= floors - 1e-9)
    assert np.all(q[others] <= cap + 1e-9)
    if control is not None:
        assert abs(q[control] - share) < 1e-9
