"""Rewards: learning, idempotency, orphans, late rewards, reward definitions, batches."""

from __future__ import annotations

import datetime as dt
import time

import numpy as np
from sqlalchemy import func, select

from service import policies
from service.models import ArmStat, PolicyState, Reward, utcnow
from service.policies import PolicyCache


def _state(session_factory, key="exp"):
    with session_factory() as session:
        st = session.scalars(select(PolicyState)).one()
        return st.version, policies.restore(st.state)


def _n_rewards(session_factory) -> int:
    """Stored rewards (not the one observation row each learned decision adds to the log)."""
    with session_factory() as session:
        q = select(func.count()).select_from(Reward).where(Reward.kind != "decision")
        return int(session.scalar(q) or 0)


def test_click_and_conversion_of_a_decision_are_one_observation(api, session_factory):
    api.experiment(reward={"click": 1, "conversion": 5})
    d = api.decide()
    r = api.post(
        "/v1/experiments/exp/rewards",
        {"decision_id": d["decision_id"], "kind": "click"},
        scope="write",
        **{"Idempotency-Key": "c1"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    # below the definition's maximum and the window is open: waits for the decision
    assert body["status"] == "pending" and body["value"] == 1.0 and body["policy_version"] is None
    assert _state(session_factory)[0] == 0
    r = api.post(
        "/v1/experiments/exp/rewards",
        {"decision_id": d["decision_id"], "kind": "conversion", "reward_id": "v1"},
        scope="write",
    )
    # the conversion reaches the maximum: the decision is learned now, once, as 5 / 5
    assert r.json()["status"] == "learned" and r.json()["policy_version"] == 1
    replay = api.post(
        "/v1/experiments/exp/rewards",
        {"decision_id": d["decision_id"], "kind": "click"},
        scope="write",
        **{"Idempotency-Key": "c1"},
    ).json()
    assert replay["status"] == "learned" and replay["policy_version"] == 1
    version, policy = _state(session_factory)
    arm = d["arm_index"]
    assert version == 1
    assert policy.counts[arm] == 1 and policy.counts.sum() == 1
    assert np.isclose(policy.means[arm], 1.0)  # max(1, 5) / max(definition)
    late_click = api.post(
        "/v1/experiments/exp/rewards",
        {"decision_id": d["decision_id"], "kind": "click", "reward_id": "c2"},
        scope="write",
    ).json()
    assert late_click["status"] == "ignored"  # the decision was already learned
    assert _state(session_factory)[0] == 1
    with session_factory() as session:
        stat = session.scalars(select(ArmStat).where(ArmStat.arm == arm)).one()
        assert (stat.clicks, stat.conversions, stat.raw_sum, stat.n_learned) == (2, 1, 5.0, 1)


def test_window_close_learns_the_largest_pending_value_once(api, session_factory):
    from service.store import audit, learning

    api.experiment(reward={"click": 1, "conversion": 5}, reward_window_s=60)
    d = api.decide()
    for kind, value in (("click", 1.0), ("conversion", 2.0), ("click", 1.0)):
        r = api.post(
            "/v1/experiments/exp/rewards",
            {"decision_id": d["decision_id"], "kind": kind, "value": value},
            scope="write",
        )
        assert r.json()["status"] == "pending"
    with session_factory() as session:
        later = utcnow() + dt.timedelta(seconds=120)
        assert learning.settle(session, "exp", PolicyCache(), now=later) == 1
        assert learning.settle(session, "exp", PolicyCache(), now=later) == 0
        statuses = session.scalars(select(Reward.status).where(Reward.kind != "decision")).all()
        assert sorted(statuses) == ["learned"] * 3
    version, policy = _state(session_factory)
    assert version == 1 and policy.counts.sum() == 1
    assert np.isclose(policy.means[d["arm_index"]], 2.0 / 5.0)
    with session_factory() as session:
        assert audit.rebuild(session, "exp").equal


def test_batch_with_click_and_conversion_learns_once(api, session_factory):
    api.experiment(reward={"click": 1, "conversion": 5})
    d = api.decide()
    items = [
        {"decision_id": d["decision_id"], "kind": "click", "reward_id": "c"},
        {"decision_id": d["decision_id"], "kind": "conversion", "reward_id": "v"},
        {"decision_id": d["decision_id"], "kind": "conversion", "reward_id": "v2"},
    ]
    out = api.post("/v1/experiments/exp/rewards/batch", {"rewards": items}, scope="write").json()
    assert [x["status"] for x in out["results"]] == ["learned", "learned", "ignored"]
    assert out["learned"] == 2 and out["policy_version"] == 1
    assert _state(session_factory)[1].counts.sum() == 1


def test_idempotent_retry_returns_first_response(api, session_factory):
    api.experiment()
    d = api.decide()
    body = {"decision_id": d["decision_id"], "kind": "click"}
    first = api.post("/v1/experiments/exp/rewards", body, scope="write", **{"Idempotency-Key": "k"})
    again = api.post("/v1/experiments/exp/rewards", body, scope="write", **{"Idempotency-Key": "k"})
    assert again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert {**first.json(), "replayed": True} == again.json()
    assert _n_rewards(session_factory) == 1
    assert _state(session_factory)[0] == 1  # learned once
    other = api.post(
        "/v1/experiments/exp/rewards",
        {**body, "kind": "conversion"},
        scope="write",
        **{"Idempotency-Key": "k"},
    )
    assert other.status_code == 422 and "different body" in other.json()["detail"]
    assert _n_rewards(session_factory) == 1
    health = api.get("/v1/experiments/exp/health").json()
    assert health["duplicate_rewards"] == 1


def test_unknown_decision_404_kept_as_orphan(api, session_factory):
    api.experiment()
    r = api.post("/v1/experiments/exp/rewards", {"decision_id": "nope"}, scope="write")
    assert r.status_code == 404 and "nope" in r.json()["detail"]
    assert api.get("/v1/experiments/exp/health").json()["orphan_rewards"] == 1
    assert _state(session_factory)[0] == 0
    r = api.post("/v1/experiments/other/rewards", {"decision_id": "nope"}, scope="write")
    assert r.status_code == 404 and "experiment" in r.json()["detail"]


def test_value_out_of_range_stores_nothing(api, session_factory):
    api.experiment(reward={"click": 1, "conversion": 5})
    d = api.decide()
    items = [
        {"decision_id": d["decision_id"], "kind": "click", "reward_id": "ok"},
        {"decision_id": d["decision_id"], "kind": "conversion", "value": 7, "reward_id": "bad"},
    ]
    r = api.post("/v1/experiments/exp/rewards/batch", {"rewards": items}, scope="write")
    assert r.status_code == 422 and "outside [0, 5.0]" in r.json()["detail"]
    assert _n_rewards(session_factory) == 0 and _state(session_factory)[0] == 0
    raw = '{"decision_id": "' + d["decision_id"] + '", "value": NaN}'
    r = api.client.post(
        "/v1/experiments/exp/rewards",
        content=raw,
        headers=api.h("write", **{"Content-Type": "application/json"}),
    )
    assert r.status_code == 422 and "finite" in r.json()["detail"]
    assert _n_rewards(session_factory) == 0


def test_gaussian_policy_accepts_any_finite_value(api):
    api.experiment(policy="gaussian-thompson", reward={"conversion": 10})
    d = api.decide()
    r = api.post(
        "/v1/experiments/exp/rewards",
        {"decision_id": d["decision_id"], "kind": "conversion", "value": 25.0},
        scope="write",
    )
    assert r.status_code == 200 and r.json()["status"] == "learned"


def test_conversion_only_definition_ignores_clicks(api, session_factory):
    api.experiment(reward={"conversion": 1})
    d = api.decide()
    r = api.post(
        "/v1/experiments/exp/rewards",
        {"decision_id": d["decision_id"], "kind": "click"},
        scope="write",
    )
    assert r.json()["status"] == "ignored"
    assert _state(session_factory)[0] == 0
    stats = api.get("/v1/experiments/exp/stats").json()
    assert sum(a["clicks"] for a in stats["arms"]) == 1  # counted, not learned


def test_late_rewards_are_kept_out_of_learning(api, session_factory):
    api.experiment("late", reward_window_s=0.05)
    api.experiment("learnlate", reward_window_s=0.05, learn_late=True)
    d1, d2 = api.decide("late"), api.decide("learnlate")
    time.sleep(0.1)
    r1 = api.post("/v1/experiments/late/rewards", {"decision_id": d1["decision_id"]}, scope="write")
    r2 = api.post(
        "/v1/experiments/learnlate/rewards", {"decision_id": d2["decision_id"]}, scope="write"
    )
    assert r1.json()["status"] == "late"
    assert r2.json()["status"] == "learned"
    assert api.get("/v1/experiments/late/health").json()["late_rewards"] == 1


def test_rewards_on_fallback_decisions_and_stopped_experiments_are_not_learned(
    api, session_factory
):
    api.experiment()
    d = api.decide()
    api.post("/v1/experiments/exp/pause")
    fb = api.decide()
    assert fb["fallback"]
    r = api.post("/v1/experiments/exp/rewards", {"decision_id": fb["decision_id"]}, scope="write")
    assert r.json()["status"] == "ignored"
    r = api.post("/v1/experiments/exp/rewards", {"decision_id": d["decision_id"]}, scope="write")
    assert r.json()["status"] == "learned"  # paused still learns its own decisions
    api.post("/v1/experiments/exp/stop")
    r = api.post(
        "/v1/experiments/exp/rewards",
        {"decision_id": d["decision_id"], "kind": "conversion"},
        scope="write",
    )
    assert r.json()["status"] == "ignored"


def test_batch(api, session_factory):
    api.experiment()
    ds = [api.decide(unit=f"u{i}") for i in range(5)]
    items = [
        {"decision_id": d["decision_id"], "kind": "click", "reward_id": f"r{i}"}
        for i, d in enumerate(ds)
    ]
    items.append({"decision_id": "missing", "reward_id": "orph"})
    items.append(dict(items[0]))  # repeated inside the batch
    r = api.post("/v1/experiments/exp/rewards/batch", {"rewards": items}, scope="write")
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["learned"] == 5 and out["policy_version"] == 1
    statuses = [x["status"] for x in out["results"]]
    assert statuses == ["learned"] * 5 + ["orphan", "learned"]
    assert (
        out["results"][-1]["replayed"]
        and out["results"][-1]["reward_id"] == out["results"][0]["reward_id"]
    )
    # the whole batch again: everything replayed, nothing learned twice
    again = api.post("/v1/experiments/exp/rewards/batch", {"rewards": items}, scope="write").json()
    assert all(x["replayed"] for x in again["results"]) and again["learned"] == 0
    assert again["policy_version"] == 1
    assert _n_rewards(session_factory) == 6
    # a key reused with another body rejects the whole batch
    bad = [
        {"decision_id": ds[0]["decision_id"], "reward_id": "new"},
        {**items[1], "kind": "conversion"},
    ]
    r = api.post("/v1/experiments/exp/rewards/batch", {"rewards": bad}, scope="write")
    assert r.status_code == 422 and "'r1'" in r.json()["detail"]
    assert _n_rewards(session_factory) == 6
    version, policy = _state(session_factory)
    assert version == 1 and policy.counts.sum() == 5


def test_batch_limits(api, db):
    api.experiment()
    r = api.post("/v1/experiments/exp/rewards/batch", {"rewards": []}, scope="write")
    assert r.status_code == 422


def test_reserved_idempotency_prefix(api, session_factory):
    api.experiment()
    d = api.decide()
    r = api.post(
        "/v1/experiments/exp/rewards",
        {"decision_id": d["decision_id"]},
        scope="write",
        **{"Idempotency-Key": f"settle:{d['decision_id']}"},
    )
    assert r.status_code == 422 and "reserved" in r.json()["detail"]
    assert _n_rewards(session_factory) == 0


def test_zero_valued_click_is_learned_but_not_counted_as_a_click(api, session_factory):
    api.experiment(reward_window_s=None)  # no window: a decision is learned at its first reward
    d = api.decide()
    r = api.post(
        "/v1/experiments/exp/rewards", {"decision_id": d["decision_id"], "value": 0}, scope="write"
    )
    assert r.json()["status"] == "learned"
    arm = api.get("/v1/experiments/exp/stats").json()["arms"][d["arm_index"]]
    assert arm["clicks"] == 0 and arm["observations"] == 1 and arm["mean_reward"] == 0.0
