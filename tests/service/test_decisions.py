"""Decisions: what is returned, what is logged, paused / stopped behaviour."""

from __future__ import annotations

import math

from sqlalchemy import select

from service import policies
from service.models import Decision


def test_decision_is_logged_with_probabilities(api, session_factory):
    exp = api.experiment("x", floors=0.1)
    d = api.decide("x", "user-1")
    assert d["arm"] in exp["arms"] and exp["arms"][d["arm_index"]] == d["arm"]
    assert list(d["probabilities"]) == exp["arms"]
    assert math.isclose(sum(d["probabilities"].values()), 1.0)
    assert min(d["probabilities"].values()) >= 0.1 - 1e-9
    assert d["policy_version"] == 0 and d["fallback"] is False
    with session_factory() as session:
        row = session.get(Decision, d["decision_id"])
        assert row is not None and row.unit_id == "user-1" and row.arm == d["arm_index"]
        assert row.probabilities == list(d["probabilities"].values())
        # the draw is replayable from the logged seed and probabilities
        assert policies.draw(row.probabilities, row.seed) == row.arm


def test_context_and_served_items_are_stored(api, session_factory):
    api.experiment("x")
    r = api.post(
        "/v1/experiments/x/decisions",
        {"unit_id": "u", "context": {"page": "home"}, "served_items": ["i1", "i2"]},
        scope="write",
    )
    with session_factory() as session:
        row = session.get(Decision, r.json()["decision_id"])
        assert row.context == {"page": "home"} and row.served_items == ["i1", "i2"]


def test_traffic_follows_the_allocation(api):
    api.experiment("x", policy="epsilon-greedy", params={"epsilon": 1.0})
    arms = [api.decide("x", f"u{i}")["arm"] for i in range(300)]
    for a in ("a", "b", "c"):
        assert 60 < arms.count(a) < 140


def test_paused_gives_fallback_or_409(api, session_factory):
    api.experiment("fb", fallback_arm="b")
    api.post("/v1/experiments/fb/pause")
    d = api.decide("fb")
    assert d["arm"] == "b" and d["fallback"] is True
    assert d["probabilities"] == {"a": 0.0, "b": 1.0, "c": 0.0}
    api.experiment("rj", when_inactive="reject")
    api.post("/v1/experiments/rj/stop")
    r = api.post("/v1/experiments/rj/decisions", {"unit_id": "u"}, scope="write")
    assert r.status_code == 409 and "stopped" in r.json()["detail"]
    with session_factory() as session:
        assert len(session.scalars(select(Decision)).all()) == 1


def test_bad_requests(api):
    api.experiment("x")
    assert (
        api.post("/v1/experiments/nope/decisions", {"unit_id": "u"}, scope="write").status_code
        == 404
    )
    r = api.post("/v1/experiments/x/decisions", {"unit": "u"}, scope="write")
    assert r.status_code == 422 and "unit_id" in r.json()["detail"]
    r = api.post("/v1/experiments/x/decisions", {"unit_id": ""}, scope="write")
    assert r.status_code == 422


def test_open_read_transaction_neither_blocks_writers_nor_writes(api, backend):
    """The SQLite freeze: a read transaction used to take the write lock (BEGIN IMMEDIATE)."""
    import pytest
    from sqlalchemy import select, text
    from sqlalchemy.exc import OperationalError

    from service.models import Experiment

    api.experiment()
    app = api.client.app
    with app.state.read_sessionmaker() as session:
        assert session.execute(select(Experiment.key)).scalars().all() == ["exp"]  # open
        d = api.decide()  # a writer goes ahead while the read transaction is open
        r = api.post(
            "/v1/experiments/exp/rewards", {"decision_id": d["decision_id"]}, scope="write"
        )
        assert r.status_code == 200, r.text
        assert api.get("/v1/experiments/exp/health").json()["decisions"] == 1
        if backend == "sqlite":
            with pytest.raises(OperationalError, match=r"readonly|query_only|attempt to write"):
                session.execute(text("DELETE FROM api_keys"))


def test_k_above_the_maximum_is_refused_without_recommenders(api, session_factory):
    """``k`` is bounded by the setting ``max_k`` even where the arms name no recommender
    (the answer would hold no list); nothing is stored."""
    api.experiment()
    r = api.post("/v1/experiments/exp/decisions", {"unit_id": "u", "k": 10**9}, scope="write")
    assert r.status_code == 422 and "above the configured maximum 100" in r.json()["detail"]
    with session_factory() as session:
        assert session.query(Decision).count() == 0
