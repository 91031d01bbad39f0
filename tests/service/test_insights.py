"""Read side: allocation, stats, health; settling unrewarded decisions."""

from __future__ import annotations

import datetime as dt
import random

import numpy as np
import pytest

from service.models import utcnow
from service.policies import PolicyCache
from service.store import audit, decisions, learning


def test_allocation_stats_health(api, monkeypatch):
    # decisions draw with seeded seeds: the logged seeds, hence the SRM p-value, are fixed
    rng = random.Random(20)
    monkeypatch.setattr(decisions, "new_seed", lambda: rng.getrandbits(63))
    api.experiment(reward={"click": 1})
    ds = [api.decide(unit=f"u{i}") for i in range(40)]
    items = [
        {"decision_id": d["decision_id"], "kind": "click", "reward_id": f"c{i}"}
        for i, d in enumerate(ds)
        if d["arm"] == "a" or i % 3 == 0
    ]
    api.post("/v1/experiments/exp/rewards/batch", {"rewards": items}, scope="write")
    alloc = api.get("/v1/experiments/exp/allocation").json()
    assert alloc["policy_version"] == 1 and np.isclose(sum(alloc["allocation"].values()), 1)
    stats = api.get("/v1/experiments/exp/stats").json()
    arms = stats["arms"]
    assert sum(a["decisions"] for a in arms) == 40
    assert sum(a["clicks"] for a in arms) == len(items)
    assert np.isclose(sum(a["prob_best"] for a in arms), 1.0)
    for a in arms:
        assert a["weight"] == alloc["allocation"][a["arm"]]
        assert a["expected_loss"] >= 0
        if a["observations"] >= 2:
            assert a["ci95_low"] <= a["mean_reward"] <= a["ci95_high"]
    health = api.get("/v1/experiments/exp/health").json()
    assert health["decisions"] == 40 and health["srm"]["mismatch"] is False
    assert sum(health["srm"]["observed"].values()) == 40
    assert np.isclose(sum(health["srm"]["expected"].values()), 40)
    assert health["pending_decisions"] == 40 - len(items)
    assert health["policy_version"] == 1 and health["last_policy_update"]


def test_settle_learns_zero_for_unrewarded_decisions(api, session_factory):
    api.experiment(reward_window_s=60)
    ds = [api.decide(unit=f"u{i}") for i in range(6)]
    api.post("/v1/experiments/exp/rewards", {"decision_id": ds[0]["decision_id"]}, scope="write")
    cache = PolicyCache()
    with session_factory() as session:
        assert learning.settle(session, "exp", cache) == 0  # windows still open
        later = utcnow() + dt.timedelta(seconds=120)
        assert learning.settle(session, "exp", cache, now=later) == 5
        assert learning.settle(session, "exp", cache, now=later) == 0  # watermark
    stats = api.get("/v1/experiments/exp/stats").json()
    assert sum(a["observations"] for a in stats["arms"]) == 6
    health = api.get("/v1/experiments/exp/health").json()
    assert health["pending_decisions"] == 0 and health["rewards"] == 1
    with session_factory() as session:
        assert audit.rebuild(session, "exp").equal


def test_srm_detects_tampered_traffic():
    from service.stats import sample_ratio_test

    p = np.array([0.5, 0.3, 0.2])
    fair = sample_ratio_test([(np.array([498, 305, 197]), p)], 3)
    assert fair.p_value > 0.01 and fair.dof == 2
    skewed = sample_ratio_test([(np.array([600, 250, 150]), p)], 3)
    assert skewed.p_value < 1e-6
    impossible = sample_ratio_test([(np.array([10, 0, 1]), np.array([0.5, 0.5, 0.0]))], 3)
    assert impossible.p_value == 0.0
    # several versions: expected counts add up per version
    multi = sample_ratio_test(
        [(np.array([90, 10]), np.array([0.9, 0.1])), (np.array([10, 90]), np.array([0.1, 0.9]))], 2
    )
    assert np.allclose(multi.expected, [100, 100]) and multi.p_value > 0.5


@pytest.mark.parametrize("seed", range(5))
def test_srm_false_alarm_rate_is_controlled(seed):
    from service.stats import sample_ratio_test

    rng = np.random.default_rng(seed)
    groups = []
    for _ in range(20):
        p = rng.dirichlet(np.ones(4))
        groups.append((rng.multinomial(200, p), p))
    assert sample_ratio_test(groups, 4).p_value > 1e-3


def test_arm_summary():
    from service.stats import arm_summary

    s = arm_summary(
        np.array([100.0, 100.0, 0.0]),
        np.array([10.0, 30.0, 0.0]),
        np.array([10.0, 30.0, 0.0]),
        scale=5.0,
    )
    assert np.isclose(s.mean[0], 0.5) and np.isclose(s.mean[1], 1.5) and s.mean[2] is None
    assert s.low[1] < 1.5 < s.high[1]
    assert s.prob_best[1] > 100 * s.prob_best[0] and np.isclose(sum(s.prob_best), 1.0)
    assert s.expected_loss[1] < s.expected_loss[0]


def test_one_experiments_settling_failure_does_not_stop_the_others(api, session_factory):
    from sqlalchemy import update

    from service.models import Experiment

    api.experiment("bad", reward_window_s=60)
    api.experiment("good", reward_window_s=60)
    api.decide("bad")
    api.decide("good")
    with session_factory() as session:  # a window that overflows date arithmetic
        session.execute(
            update(Experiment).where(Experiment.key == "bad").values(reward_window_s=1e300)
        )
        session.commit()
    app = api.client.app
    failures = app.state.background_failures
    later = utcnow() + dt.timedelta(seconds=120)
    with session_factory() as session:
        assert learning.settle_all(session, app.state.policy_cache, failures, now=later) == 1
    assert api.get("/v1/experiments/good/health").json()["pending_decisions"] == 0
    bad = api.get("/v1/experiments/bad/health").json()
    assert "OverflowError" in bad["background_error"] and bad["background_error_at"]
    assert api.get("/v1/experiments/good/health").json()["background_error"] is None
