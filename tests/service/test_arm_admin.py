"""Arms added to or retired from a running experiment over HTTP (admin scope)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pytest

from service.export import export_log
from service.models import ArmStat, PolicyUpdate, Reward
from service.store import audit, dashboard, insights
from tests.service.conftest import Api
from tests.service.test_serving import decide, models_dir, reward, sapi  # noqa: F401 (fixtures)


def learn_some(api: Api, n: int = 30, key: str = "exp", rate: float = 0.5) -> None:
    """``n`` decisions, each rewarded (click 1 or 0 at random), learned at once."""
    rng = np.random.default_rng(5)
    for u in range(n):
        d = api.decide(key, unit=f"u{u}")
        value = float(rng.random() < rate)
        r = api.post(
            f"/v1/experiments/{key}/rewards",
            {"decision_id": d["decision_id"], "kind": "click", "value": value},
            scope="write",
        )
        assert r.status_code == 200, r.text


def rebuild_equal(session_factory: Any, key: str = "exp") -> audit.RebuildResult:
    with session_factory() as session:
        result = audit.rebuild(session, key)
    assert result.updates == result.version
    assert result.equal, "rebuilt state differs from the live one"
    return result


def test_added_arm_is_explored_at_once_and_rebuild_equals_live(api, session_factory):
    api.experiment(policy="ucb1", reward_window_s=None, floors=0.05)
    learn_some(api)
    r = api.post("/v1/experiments/exp/arms", {"name": "d"})
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["arms"] == ["a", "b", "c", "d"] and out["floors"] == [0.05] * 4
    alloc = api.get("/v1/experiments/exp/allocation").json()["allocation"]
    # ucb1: an arm without observations has an infinite index; the scalar floor binds it too
    assert alloc["d"] == pytest.approx(1 - 3 * 0.05)
    assert all(alloc[a] == pytest.approx(0.05) for a in "abc")
    drawn = Counter(api.decide(unit=f"v{u}")["arm"] for u in range(40))
    assert drawn["d"] > 25
    learn_some(api, 20)
    stats = {s["arm"]: s for s in api.get("/v1/experiments/exp/stats").json()["arms"]}
    assert stats["d"]["observations"] > 0 and not stats["d"]["retired"]
    result = rebuild_equal(session_factory)
    assert result.allocation == pytest.approx(
        list(api.get("/v1/experiments/exp/allocation").json()["allocation"].values())
    )
    with session_factory() as session:
        changes = session.query(PolicyUpdate).filter(PolicyUpdate.kind == "arms").all()
        assert [c.change for c in changes] == [{"action": "add", "arm": 3}]
        assert session.query(ArmStat).filter(ArmStat.arm == 3).count() == 1
    health = api.get("/v1/experiments/exp/health").json()
    assert set(health["srm"]["observed"]) == {"a", "b", "c", "d"}
    with session_factory() as session:  # decisions from before the add: P(d) = 0
        table = export_log(session, "exp")
    assert table.num_rows == 30 + 40 + 20
    assert table.column("prob_3").to_pylist()[:30] == [0.0] * 30


def test_retired_arm_gets_no_traffic_and_keeps_its_history(api, session_factory):
    api.experiment(reward_window_s=None, fallback_arm="b")
    decisions = [api.decide(unit=f"u{u}") for u in range(30)]
    old_b = next(d for d in decisions if d["arm"] == "b")
    before = {s["arm"]: s for s in api.get("/v1/experiments/exp/stats").json()["arms"]}
    r = api.post("/v1/experiments/exp/arms/b/retire")
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["retired"] == ["b"] and out["arms"] == ["a", "b", "c"]
    assert out["fallback_arm"] == "a"  # the retired fallback handed its role on
    alloc = api.get("/v1/experiments/exp/allocation").json()["allocation"]
    assert alloc["b"] == 0.0 and alloc["a"] + alloc["c"] == pytest.approx(1.0)
    assert all(api.decide(unit=f"v{u}")["arm"] != "b" for u in range(60))
    # a reward for an earlier decision of the retired arm: counted, never learned
    r = api.post(
        "/v1/experiments/exp/rewards", {"decision_id": old_b["decision_id"]}, scope="write"
    )
    assert r.status_code == 200 and r.json()["status"] == "retired", r.text
    learn_some(api, 10)
    stats = {s["arm"]: s for s in api.get("/v1/experiments/exp/stats").json()["arms"]}
    assert stats["b"]["retired"] and stats["b"]["decisions"] == before["b"]["decisions"]
    assert stats["b"]["clicks"] == 1 and stats["b"]["observations"] == 0
    assert stats["b"]["weight"] == 0.0
    rebuild_equal(session_factory)
    health = api.get("/v1/experiments/exp/health").json()
    assert health["srm"]["p_value"] > 1e-3  # versions' allocations still explain the counts
    # re-adding under the retired name is refused: its history keeps the name
    r = api.post("/v1/experiments/exp/arms", {"name": "b"})
    assert r.status_code == 409 and "already has an arm named 'b'" in r.text


def test_add_then_retire_with_rewards_in_between_rebuilds(api, session_factory):
    api.experiment(policy="discounted-ucb", reward_window_s=None)
    learn_some(api, 15)
    assert api.post("/v1/experiments/exp/arms", {"name": "d"}).status_code == 201
    learn_some(api, 15)
    assert api.post("/v1/experiments/exp/arms/a/retire").status_code == 200
    learn_some(api, 15)
    assert api.post("/v1/experiments/exp/arms", {"name": "e"}).status_code == 201
    learn_some(api, 15)
    result = rebuild_equal(session_factory)
    assert result.observations == 60 and result.series_differences == 0
    alloc = api.get("/v1/experiments/exp/allocation").json()["allocation"]
    assert list(alloc) == ["a", "b", "c", "d", "e"] and alloc["a"] == 0.0
    # the dashboard's series: every point over all five arms, the arm changes not drawn
    with session_factory() as session:
        ts = dashboard.time_series(session, "exp", insights.experiment_stats(session, "exp"))
    assert all(len(w) == 5 for w in ts.weights)
    totals = [sum(row) for row in ts.observations]
    assert totals == sorted(totals) and totals[-1] == 60


@pytest.mark.parametrize(
    ("url", "body", "code", "message"),
    [
        ("/v1/experiments/exp/arms/zz/retire", None, 404, "has no arm named 'zz'"),
        ("/v1/experiments/nope/arms/a/retire", None, 404, "no experiment with key 'nope'"),
        ("/v1/experiments/exp/arms", {"name": "a"}, 409, "already has an arm named 'a'"),
        ("/v1/experiments/exp/arms", {"name": "d", "recommender": "mf"}, 422, "not loaded"),
        ("/v1/experiments/exp/arms", {"name": ""}, 422, "name"),
        ("/v1/experiments/exp/arms/ctl/retire", None, 422, "is the control arm"),
    ],
)
def test_bad_arm_changes_are_4xx_and_store_nothing(api, session_factory, url, body, code, message):
    api.experiment(arms=["a", "b", "ctl"], control_arm="ctl", control_share=0.2)
    r = api.post(url, body)
    assert r.status_code == code and message in r.text, r.text
    exp = api.get("/v1/experiments/exp").json()
    assert exp["policy_version"] == 0 and exp["arms"] == ["a", "b", "ctl"]
    assert exp["retired"] == []


def test_last_active_arm_already_retired_scope_and_stopped(api):
    api.experiment(arms=["a", "b"])
    assert api.post("/v1/experiments/exp/arms/a/retire", scope="write").status_code == 403
    assert api.post("/v1/experiments/exp/arms/a/retire").status_code == 200
    r = api.post("/v1/experiments/exp/arms/a/retire")
    assert r.status_code == 409 and "already retired" in r.text
    r = api.post("/v1/experiments/exp/arms/b/retire")
    assert r.status_code == 422 and "last active arm" in r.text
    assert api.post("/v1/experiments/exp/stop").status_code == 200
    r = api.post("/v1/experiments/exp/arms", {"name": "c"})
    assert r.status_code == 409 and "stopped" in r.text
    assert api.get("/v1/experiments/exp").json()["policy_version"] == 1


def test_caps_the_remaining_arms_cannot_satisfy_are_422(api):
    api.experiment(caps=0.4)
    r = api.post("/v1/experiments/exp/arms/a/retire")
    assert r.status_code == 422 and "caps sum to 0.8" in r.text, r.text
    assert api.get("/v1/experiments/exp").json()["retired"] == []


def test_fuse_retired_arm_is_never_a_source_and_added_arm_serves(sapi, session_factory):  # noqa: F811
    recs = {"a": "pop", "b": "mf", "c": "knn"}
    sapi.experiment(mode="fuse", recommenders=recs, reward_window_s=None)
    r = sapi.post("/v1/experiments/exp/arms", {"name": "d"})
    assert r.status_code == 422 and "needs a recommender for every arm" in r.text
    old = decide(sapi, k=5)
    old_b = next((i for i in old["items"] if i["arm"] == "b"), None)
    assert sapi.post("/v1/experiments/exp/arms/b/retire").status_code == 200
    sources: Counter[str] = Counter()
    for u in range(30):
        d = decide(sapi, unit_id=str(u), k=5)
        sources.update(i["arm"] for i in d["items"])
        assert d["probabilities"]["b"] == 0.0
        r = reward(sapi, d, item_id=d["items"][u % 5]["item_id"])
        assert r.status_code == 200 and r.json()["status"] == "learned", r.text
    assert "b" not in sources and sources["a"] > 0 and sources["c"] > 0
    if old_b is not None:  # a click on the retired arm's slot of an earlier list
        r = reward(sapi, old, item_id=old_b["item_id"])
        assert r.json()["status"] == "retired", r.text
    r = sapi.post("/v1/experiments/exp/arms", {"name": "d", "recommender": "mf"})
    assert r.status_code == 201 and r.json()["recommenders"]["d"] == "mf", r.text
    d = decide(sapi, k=5)
    assert any(i["arm"] == "d" for i in d["items"])  # new arm explored at once
    assert reward(sapi, d, position=0).status_code == 200
    rebuild_equal(session_factory)
    with session_factory() as session:
        learned_arms = {r.arm for r in session.query(Reward).filter(Reward.learned)}
    assert 1 not in learned_arms
