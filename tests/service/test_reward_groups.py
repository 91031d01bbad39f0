"""Group commit of single rewards (setting ``reward_group_commit``) on both backends.

Rewards recorded in one group must get the results they get one at a time, leave the same
policy and log behind, be answered only once committed, and a bad reward must fail only
its own request.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select

from service import policies
from service.app import create_app
from service.errors import Invalid, NotFound
from service.models import Experiment, PolicyState, Reward
from service.policies import PolicyCache
from service.schemas import RewardCreate, RewardOut
from service.store import audit
from service.store import rewards as reward_store
from service.store.reward_groups import RewardWriter
from tests.service.conftest import Api, assert_log_replays


def _decisions(api: Api, key: str, n: int) -> list[str]:
    return [api.decide(key, f"u{i}")["decision_id"] for i in range(n)]


def _items(ids: list[str]) -> list[tuple[str, RewardCreate]]:
    """A click on each decision but the last, a retry of the first (same key and body),
    a conversion on the last and a click on an unknown decision."""
    items = [(f"k{i}", RewardCreate(decision_id=d, kind="click")) for i, d in enumerate(ids[:-1])]
    items.append(("k0", RewardCreate(decision_id=ids[0], kind="click")))
    items.append(("kc", RewardCreate(decision_id=ids[-1], kind="conversion")))
    items.append(("ko", RewardCreate(decision_id="no-such-decision", kind="click")))
    return items


def _in_one_group(writer: RewardWriter, key: str, items: list[tuple[str, RewardCreate]]) -> list:
    """Queue ``items`` at once (the writer waits to fill its group) and collect each
    request's result or error, in order."""
    futures = [writer.record(key, k, body) for k, body in items]
    out: list[Any] = []
    for fut in futures:
        try:
            out.append(fut.result(timeout=60))
        except Exception as err:
            out.append(err)
    return out


def _summary(r: RewardOut) -> tuple[Any, ...]:
    return (r.idempotency_key, r.decision_id, r.kind, r.value, r.status, r.replayed)


def test_a_group_gets_the_results_of_one_reward_at_a_time(api, session_factory):
    """The same rewards, one transaction each on one experiment and in **one** group on a
    twin: the same results (status, value, replay, orphan) and the same learned policy."""
    for key in ("one", "grouped"):
        api.experiment(key, reward={"click": 1, "conversion": 1})
    made = {key: [api.decide(key, f"u{i}") for i in range(6)] for key in ("one", "grouped")}
    alone_items = _items([d["decision_id"] for d in made["one"]])
    grouped_items = _items([d["decision_id"] for d in made["grouped"]])
    cache = PolicyCache()
    alone = []
    for k, body in alone_items:
        with session_factory() as session:
            alone += reward_store.record_rewards(session, "one", [(k, body)], cache)[0]
    writer = RewardWriter(session_factory, cache, max_items=len(grouped_items), max_wait_s=30)
    grouped = _in_one_group(writer, "grouped", grouped_items)
    writer.close()
    assert (writer.transactions, writer.rewards) == (1, len(grouped_items))
    assert all(isinstance(r, RewardOut) for r in grouped), grouped

    def relabel(r: RewardOut, ids: list[tuple[str, RewardCreate]]) -> tuple[Any, ...]:
        index = {body.decision_id: i for i, (_, body) in enumerate(ids)}
        return (*_summary(r)[:1], index[r.decision_id], *_summary(r)[2:])

    assert [relabel(r, grouped_items) for r in grouped] == [relabel(r, alone_items) for r in alone]
    statuses = [r.status for r in grouped]
    assert statuses == ["learned"] * 5 + ["learned", "learned", "orphan"]
    assert grouped[5].replayed and grouped[5].reward_id == grouped[0].reward_id
    # one policy update for the group, one per learned reward alone: the same counts
    assert len({r.policy_version for r in grouped if r.status == "learned"}) == 1
    with session_factory() as session:
        states = {
            key: policies.restore(state)
            for key, state in session.execute(
                select(Experiment.key, PolicyState.state).join(
                    PolicyState, PolicyState.experiment_id == Experiment.id
                )
            )
        }
        for key in ("one", "grouped"):  # each decision learned once, on its own arm
            arms = [d["arm_index"] for d in made[key]]
            assert list(states[key].counts) == list(np.bincount(arms, minlength=3))
        rebuilt = audit.rebuild(session, "grouped")
        assert rebuilt.observations == 6 and rebuilt.equal


def test_a_bad_reward_fails_alone(api, session_factory):
    """A key reused with another body and a value out of range in one group: the group's
    transaction fails, each reward is recorded again alone, and only those two fail, with
    the error each gets alone."""
    api.experiment()
    ids = _decisions(api, "exp", 5)
    items = [(f"k{i}", RewardCreate(decision_id=d, kind="click")) for i, d in enumerate(ids)]
    items.append(("k1", RewardCreate(decision_id=ids[1], kind="conversion")))  # k1 reused
    items.append(("big", RewardCreate(decision_id=ids[4], kind="click", value=7.0)))
    writer = RewardWriter(session_factory, PolicyCache(), max_items=len(items), max_wait_s=30)
    results = _in_one_group(writer, "exp", items)
    writer.close()
    failed = [i for i, r in enumerate(results) if isinstance(r, Exception)]
    assert failed == [5, 6], results
    assert all(isinstance(results[i], Invalid) for i in failed)
    assert "Idempotency key reused" in str(results[5])
    assert "outside [0, 1.0]" in str(results[6])
    assert [r.status for r in results[:5]] == ["learned"] * 5
    assert writer.transactions == 5  # the failed group, then each good reward alone
    with session_factory() as session:
        stored = session.scalars(select(Reward.idempotency_key).where(Reward.kind == "click"))
        assert sorted(stored) == [f"k{i}" for i in range(5)]
        assert_log_replays(session, "exp", 5)


def test_an_unknown_experiment_fails_its_own_group_only(api, session_factory):
    api.experiment()
    (did,) = _decisions(api, "exp", 1)
    writer = RewardWriter(session_factory, PolicyCache(), max_items=2, max_wait_s=30)
    futures: list[Future[RewardOut]] = [
        writer.record("nope", "a", RewardCreate(decision_id=did, kind="click")),
        writer.record("exp", "b", RewardCreate(decision_id=did, kind="click")),
    ]
    with pytest.raises(NotFound):
        futures[0].result(timeout=60)
    assert futures[1].result(timeout=60).status == "learned"
    writer.close()
    with pytest.raises(RuntimeError, match="closed"):
        writer.record("exp", "c", RewardCreate(decision_id=did, kind="click"))


def test_concurrent_rewards_answered_after_their_commit(db, keys):
    """Many concurrent single rewards through the API: each answered once its row is
    committed (seen at once on a new connection), some sharing a transaction, every one
    learned once, and the live policy equal to its rebuild."""
    n = 40
    engine = create_engine(db.url, connect_args=_connect_args(db))
    settings = db.model_copy(update={"pool_size": 20, "reward_group_commit": True})
    with TestClient(create_app(settings)) as client:
        api = Api(client, keys)
        api.experiment()
        ids = _decisions(api, "exp", n)
        start = threading.Barrier(n)

        def one(i: int) -> tuple[int, str, bool]:
            start.wait()
            r = api.post(
                "/v1/experiments/exp/rewards",
                {"decision_id": ids[i], "kind": "click", "reward_id": f"r{i}"},
                scope="write",
            )
            if r.status_code != 200:
                return r.status_code, r.text, False
            with engine.connect() as conn:
                seen = conn.execute(
                    select(Reward.status).where(Reward.idempotency_key == f"r{i}")
                ).scalar()
            return 200, r.json()["status"], seen == "learned"

        with ThreadPoolExecutor(n) as pool:
            results = list(pool.map(one, range(n)))
        writer = client.app.state.reward_writer  # type: ignore[attr-defined]
        assert writer.rewards == n
        assert writer.transactions < n  # some rewards did share a transaction
    engine.dispose()
    assert results == [(200, "learned", True)] * n
    with TestClient(create_app(db)) as client, client.app.state.sessionmaker() as session:  # type: ignore[attr-defined]
        assert_log_replays(session, "exp", n)


def test_default_is_on_for_postgresql_only(db, keys, backend):
    assert db.group_rewards is (backend == "postgresql")
    assert db.model_copy(update={"reward_group_commit": True}).group_rewards
    app = create_app(db.model_copy(update={"reward_group_commit": False}))
    assert app.state.reward_writer is None
    with TestClient(app) as client:  # each reward alone, in the threadpool
        api = Api(client, keys)
        api.experiment()
        (did,) = _decisions(api, "exp", 1)
        r = api.post("/v1/experiments/exp/rewards", {"decision_id": did, "kind": "click"}, "write")
        assert r.status_code == 200 and r.json()["status"] == "learned"


def _connect_args(db: Any) -> dict[str, Any]:
    if db.is_sqlite or not db.database_schema:
        return {}
    return {"options": f"-csearch_path={db.database_schema}"}
