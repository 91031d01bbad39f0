"""Position-based model: examination learned from slot-mix logs, and the clipped correction."""

from __future__ import annotations

import numpy as np
import pytest

from bandit import make_fuser
from bandit.fusion import Examination, estimate_examination, slot_observations

THETA = np.array([1.0, 0.75, 0.6, 0.5, 0.42, 0.36, 0.3, 0.26, 0.22, 0.2])
K = THETA.size


def _logs(seed: int, n: int = 6000, users: int | None = None):
    """Slot-mix lists of 3 arms over 120 items, and PBM clicks with known examination."""
    rng = np.random.default_rng(seed)
    n_items = 120
    attraction = rng.uniform(0.02, 0.9, n_items)
    # each arm ranks its candidates by a noisy view of their attraction, as a recommender does
    drawn = np.stack([[rng.choice(n_items, 30, replace=False) for _ in range(n)] for _ in range(3)])
    noisy = attraction[drawn] + rng.normal(0, 0.02, drawn.shape)
    items = np.take_along_axis(drawn, np.argsort(-noisy, axis=2), axis=2)
    out = make_fuser("slot-mix", k=K, n_samples=1).fuse(items, [0.5, 0.3, 0.2], seed=seed)
    contexts = None
    if users is not None:
        contexts = rng.integers(0, users, n)
    clicks = rng.random((n, K)) < THETA * attraction[out.items]
    return out, clicks, contexts


def test_em_recovers_the_examination_curve_from_slot_mix_logs() -> None:
    out, clicks, _ = _logs(0)
    est = estimate_examination(out.items, clicks)
    assert est.converged
    assert est.relative[0] == 1.0
    em_error = np.abs(est.relative / THETA - 1).max()
    assert em_error < 0.05, est.relative.round(3)
    # a broken estimator (raw click-through rate by position) is biased: the top slots hold
    # the arms' best items, so CTR falls faster than examination
    ctr = clicks.mean(axis=0)
    ctr_error = np.abs(ctr / ctr[0] / THETA - 1).max()
    assert ctr_error > 0.08 and ctr_error > 2 * em_error


def test_em_with_contexts_runs_and_stays_in_range() -> None:
    out, clicks, contexts = _logs(1, users=40)
    est = estimate_examination(out.items, clicks, contexts=contexts)
    assert np.all((est.relative > 0) & (est.relative <= 1.5))
    assert np.allclose(est.relative, THETA, atol=0.1)


def test_position_correction_is_clipped_and_stays_in_unit_interval() -> None:
    out, clicks, _ = _logs(2, n=500)
    exam = Examination(np.array([1.0, 0.5, 0.1, *([0.01] * (K - 3))]), 1, True)
    w = exam.weights(K, max_weight=4.0)
    assert w.tolist()[:3] == [1.0, 2.0, 4.0] and w.max() == 4.0
    arms, rewards = slot_observations(out, clicks, examination=exam, max_weight=4.0)
    assert rewards.max() <= 1.0 and rewards.min() >= 0.0
    # a click at the first position counts 1/4 of a click at a clipped position
    scaled = clicks * (w / w.max())
    assert np.allclose(rewards, scaled.ravel())
    assert np.array_equal(arms, out.source.ravel())
    # no bias (flat examination) leaves the rewards equal to the clicks
    flat = Examination(np.ones(K), 1, True)
    _, plain = slot_observations(out, clicks, examination=flat)
    assert np.array_equal(plain, clicks.ravel().astype(float))


def test_bad_logs_raise_value_errors() -> None:
    items = np.zeros((3, 4), dtype=np.int64)
    with pytest.raises(ValueError, match="clicks"):
        estimate_examination(items, np.zeros((3, 5)))
    with pytest.raises(ValueError, match="clicks"):
        estimate_examination(items, np.full((3, 4), 2.0))
    with pytest.raises(ValueError, match="items"):
        estimate_examination(items.astype(float), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="contexts"):
        estimate_examination(items, np.zeros((3, 4)), contexts=np.zeros(2, dtype=int))
    with pytest.raises(ValueError, match="smoothing"):
        estimate_examination(items, np.zeros((3, 4)), smoothing=-1)
    with pytest.raises(ValueError, match="max_weight"):
        Examination(np.ones(4), 1, True).weights(4, max_weight=0.5)
    with pytest.raises(ValueError, match="positions"):
        Examination(np.ones(4), 1, True).weights(5)
