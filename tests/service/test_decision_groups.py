"""Group commit of decisions (setting ``decision_group_commit``) on both backends.

Grouped decisions must store exactly the rows that ungrouped ones store, answer every one of
many concurrent requests only once its row is committed, and keep the good rows of a group
in which one row fails.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import String, cast, create_engine, exc, select, text

from service.app import create_app
from service.db import make_engine, make_sessionmaker
from service.errors import Unavailable
from service.models import Decision, utcnow
from service.settings import Settings
from service.store import common
from service.store import decisions as decision_store
from service.store.common import DECISION_DEADLINE_S
from service.store.decision_groups import DecisionWriter
from tests.service.conftest import PG_URL, Api, make_settings

#: Every stored column but the two that differ by construction (a fresh id, the clock).
COMPARED = [c for c in Decision.__table__.columns if c.name not in ("id", "created_at")]
#: The JSON columns as the database stores them (text): the same bytes, not only equal values.
JSON_TEXT = [
    cast(c, String)
    for c in Decision.__table__.columns
    if c.name in ("probabilities", "context", "served_items", "items")
]


def _app(db: Settings, grouped: bool, **kw: Any) -> Any:
    return create_app(db.model_copy(update={"decision_group_commit": grouped, **kw}))


def _stored(db: Settings, ids: list[str]) -> list[tuple[Any, ...]]:
    """The compared columns of decisions ``ids`` in that order, read on a new connection,
    with a flag telling SQL NULL from JSON null in ``context``."""
    engine = create_engine(db.url, connect_args=_connect_args(db))
    with engine.connect() as conn:
        rows = {
            r[0]: tuple(r[1:])
            for r in conn.execute(
                select(Decision.id, *COMPARED, *JSON_TEXT, Decision.context.is_(None)).where(
                    Decision.id.in_(ids)
                )
            )
        }
    engine.dispose()
    return [rows[i] for i in ids]


def _connect_args(db: Settings) -> dict[str, Any]:
    if db.is_sqlite or not db.database_schema:
        return {}
    return {"options": f"-csearch_path={db.database_schema}"}


def _decide_all(api: Api, bodies: list[dict[str, Any]]) -> list[str]:
    ids = []
    for body in bodies:
        r = api.post("/v1/experiments/exp/decisions", body, scope="write")
        assert r.status_code == 201, r.text
        ids.append(r.json()["decision_id"])
    return ids


def test_default_is_on_for_postgresql_only(db, backend):
    assert db.group_decisions is (backend == "postgresql")
    app = create_app(db)
    assert (app.state.decision_writer is not None) is (backend == "postgresql")
    assert not db.model_copy(update={"decision_group_commit": False}).group_decisions


def test_grouped_rows_equal_ungrouped(db, keys, monkeypatch):
    """The same decisions, one by one without grouping, then all in **one** group: the
    stored rows are the same (every column but id and time; JSON as the same text)."""
    bodies: list[dict[str, Any]] = [
        {"unit_id": "u0"},
        {"unit_id": "u1", "context": {"country": "fr", "n": [1, 2.5, None]}},
        {"unit_id": "u2", "served_items": ["i3", "i1", "i2"]},
        {"unit_id": "u3", "context": {}, "served_items": []},
        {"unit_id": "u\u00e9\u4e2d", "context": {"s": "\u00e9", "big": 2**62, "x": 0.1}},
    ]
    # one seed for all: the draw then does not depend on the order the group is formed in
    monkeypatch.setattr(decision_store, "new_seed", lambda: 1234567890123)
    with TestClient(_app(db, False)) as client:
        api = Api(client, keys)
        api.experiment()
        ungrouped = _decide_all(api, bodies)
        api.post("/v1/experiments/exp/pause", {}, scope="admin")
        ungrouped += _decide_all(api, [{"unit_id": "paused"}])  # a fallback decision
        api.post("/v1/experiments/exp/resume", {}, scope="admin")
    app = _app(db, True, decision_group_wait_ms=60_000, decision_group_max_rows=len(bodies))
    with TestClient(app) as client:
        api = Api(client, keys)
        with ThreadPoolExecutor(len(bodies)) as pool:  # written when the group is full
            grouped = list(pool.map(lambda b: _decide_all(api, [b])[0], bodies))
        writer = client.app.state.decision_writer  # type: ignore[attr-defined]
        assert (writer.groups, writer.rows) == (1, len(bodies))
        api.post("/v1/experiments/exp/pause", {}, scope="admin")
        with ThreadPoolExecutor(len(bodies)) as pool:  # fills the group: 1 fallback + 4
            ids = list(
                pool.map(
                    lambda u: _decide_all(api, [{"unit_id": u}])[0],
                    ["paused"] + [f"p{i}" for i in range(4)],
                )
            )
        grouped.append(ids[0])
        assert (writer.groups, writer.rows) == (2, 2 * len(bodies))
    assert _stored(db, ungrouped) == _stored(db, grouped)
    assert _stored(db, grouped)[-1][COMPARED.index(Decision.__table__.c.fallback)] is True


def test_concurrent_requests_answered_after_their_commit(db, keys):
    n = 50
    engine = create_engine(db.url, connect_args=_connect_args(db))
    with TestClient(_app(db, True, decision_group_wait_ms=20, pool_size=20)) as client:
        api = Api(client, keys)
        api.experiment()
        start = threading.Barrier(n)

        def one(i: int) -> tuple[int, str, bool]:
            start.wait()
            r = api.post("/v1/experiments/exp/decisions", {"unit_id": f"c{i}"}, scope="write")
            if r.status_code != 201:
                return r.status_code, r.text, False
            did = r.json()["decision_id"]
            # a new connection, as soon as the answer arrives: the row must already be there
            with engine.connect() as conn:
                seen = conn.execute(select(Decision.id).where(Decision.id == did)).first()
            return 201, did, seen is not None

        with ThreadPoolExecutor(n) as pool:
            results = list(pool.map(one, range(n)))
        writer = client.app.state.decision_writer  # type: ignore[attr-defined]
        assert writer.rows == n
        assert writer.groups < n  # some requests did share a commit
    assert all(code == 201 for code, _, _ in results), results
    assert all(seen for _, _, seen in results)
    with engine.connect() as conn:
        units = conn.execute(select(Decision.unit_id)).scalars().all()
    engine.dispose()
    assert sorted(units) == sorted(f"c{i}" for i in range(n))


def _row(exp_id: int, i: int) -> dict[str, Any]:
    return {
        "id": f"{i:032x}",
        "experiment_id": exp_id,
        "unit_id": f"w{i}",
        "arm": i % 3,
        "probabilities": [0.5, 0.25, 0.25],
        "policy_version": 0,
        "seed": i,
        "fallback": False,
        "context": None,
        "served_items": None,
        "items": None,
        "created_at": utcnow(),
    }


def test_a_failing_row_fails_alone(api, db):
    api.experiment()
    engine = make_engine(db)
    with engine.connect() as conn:
        exp_id = conn.execute(text("SELECT id FROM experiments WHERE key = 'exp'")).scalar_one()
    n = 20
    rows = [_row(exp_id, i) for i in range(n)]
    rows[7]["experiment_id"] = 10**9  # no such experiment: a foreign-key violation
    # the group is written when full: all 20 rows are in one statement, which fails
    writer = DecisionWriter(engine, max_rows=n, max_wait_s=30)
    start = threading.Barrier(n)

    def one(row: dict[str, Any]) -> Exception | None:
        start.wait()
        try:
            writer.write(row, time.monotonic())
        except Exception as err:
            return err
        return None

    t0 = time.monotonic()
    with ThreadPoolExecutor(n) as pool:
        errors = list(pool.map(one, rows))
    writer.close()
    assert time.monotonic() - t0 < 20  # written when full, not after max_wait_s
    assert isinstance(errors[7], exc.IntegrityError)
    assert [i for i, e in enumerate(errors) if e is not None] == [7]
    assert (writer.groups, writer.rows) == (0, n - 1)  # the group failed; each row alone
    with engine.connect() as conn:
        stored = conn.execute(select(Decision.unit_id).where(Decision.unit_id.like("w%")))
        assert sorted(stored.scalars()) == sorted(f"w{i}" for i in range(n) if i != 7)
    # the same error as without grouping
    with pytest.raises(exc.IntegrityError), engine.begin() as conn:
        conn.execute(Decision.__table__.insert(), {**rows[7], "id": "f" * 32})
    engine.dispose()


def test_close_stores_what_is_queued_then_refuses(api, db):
    api.experiment()
    engine = make_engine(db)
    with engine.connect() as conn:
        exp_id = conn.execute(text("SELECT id FROM experiments WHERE key = 'exp'")).scalar_one()
    writer = DecisionWriter(engine, max_rows=10, max_wait_s=0.2)
    threads = [
        threading.Thread(target=writer.write, args=(_row(exp_id, i), time.monotonic()))
        for i in range(5)
    ]
    for t in threads:
        t.start()
    time.sleep(0.05)
    writer.close()
    for t in threads:
        t.join()
    assert writer.rows == 5
    with pytest.raises(RuntimeError, match="closed"):
        writer.write(_row(exp_id, 99), time.monotonic())
    engine.dispose()


def test_a_row_past_the_decision_deadline_is_refused_alone(api, db):
    """A queued row whose decision read its experiment more than the deadline ago gets 503
    (:class:`Unavailable`) and is not stored; the rest of its group is."""
    api.experiment()
    engine = make_engine(db)
    with engine.connect() as conn:
        exp_id = conn.execute(text("SELECT id FROM experiments WHERE key = 'exp'")).scalar_one()
    writer = DecisionWriter(engine, max_rows=3, max_wait_s=30)
    now = time.monotonic()
    reads = [now, now - DECISION_DEADLINE_S - 1, now]
    start = threading.Barrier(3)

    def one(i: int) -> Exception | None:
        start.wait()
        try:
            writer.write(_row(exp_id, i), reads[i])
        except Exception as err:
            return err
        return None

    with ThreadPoolExecutor(3) as pool:
        errors = list(pool.map(one, range(3)))
    writer.close()
    assert errors[0] is None and errors[2] is None
    assert isinstance(errors[1], Unavailable) and "nothing was stored" in str(errors[1])
    with engine.connect() as conn:
        stored = conn.execute(select(Decision.unit_id).where(Decision.unit_id.like("w%")))
        assert sorted(stored.scalars()) == ["w0", "w2"]
    engine.dispose()


@pytest.mark.parametrize("grouped", [False, True])
def test_a_decision_past_its_deadline_answers_503_and_stores_nothing(
    db, keys, monkeypatch, grouped
):
    """Through the API, grouped or not: with the deadline already passed at the insert, the
    answer is 503 with a message, and the log is as before."""
    with TestClient(_app(db, grouped)) as client:
        api = Api(client, keys)
        api.experiment()
        api.decide()
        monkeypatch.setattr(common, "DECISION_DEADLINE_S", -1.0)
        r = api.post("/v1/experiments/exp/decisions", {"unit_id": "late"}, scope="write")
        assert r.status_code == 503, r.text
        assert "above the limit" in r.json()["detail"]
        monkeypatch.undo()
        assert api.decide(unit="after")["fallback"] is False
    with make_sessionmaker(make_engine(db))() as session:
        units = session.scalars(select(Decision.unit_id)).all()
    assert sorted(units) == ["after", "u1"]


@pytest.mark.postgres
@pytest.mark.parametrize("idle_s", [0.0, 3600.0])
def test_pool_pings_only_idle_connections(pg_schema, tmp_path, idle_s):
    """A connection idle past ``pool_ping_idle_s`` is pinged at checkout and replaced if the
    server dropped it; one returned more recently is used as is (no extra round trip), so
    its drop fails one use and the pool then reconnects."""
    engine = make_engine(make_settings("postgresql", tmp_path, pg_schema, pool_ping_idle_s=idle_s))
    admin = create_engine(PG_URL)
    pid_sql = text("SELECT pg_backend_pid()")
    with engine.connect() as conn:
        pid = conn.execute(pid_sql).scalar_one()
    with admin.connect() as conn:
        assert conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar_one()
    time.sleep(0.2)
    if idle_s == 0:
        with engine.connect() as conn:
            assert conn.execute(pid_sql).scalar_one() != pid
    else:
        with pytest.raises(exc.OperationalError) as info, engine.connect() as conn:
            conn.execute(pid_sql)
        assert info.value.connection_invalidated
        with engine.connect() as conn:
            assert conn.execute(pid_sql).scalar_one() != pid
    engine.dispose()
    admin.dispose()


def test_one_group_answers_each_request_its_own_status(db, keys):
    """404 (no such experiment) and 409 (paused, rejecting) in the same group as two good
    decisions of another experiment: each gets its own answer; only the good ones are stored."""
    app = _app(db, True, decision_group_wait_ms=60_000, decision_group_max_rows=4)
    with TestClient(app) as client:
        api = Api(client, keys)
        api.experiment()
        api.experiment("rej", when_inactive="reject")
        assert api.post("/v1/experiments/rej/pause", {}).status_code == 200
        urls = ["exp", "exp", "nope", "rej"]
        with ThreadPoolExecutor(len(urls)) as pool:
            answers = list(
                pool.map(
                    lambda u: api.post(f"/v1/experiments/{u}/decisions", {"unit_id": u}, "write"),
                    urls,
                )
            )
        assert [r.status_code for r in answers] == [201, 201, 404, 409]
        assert "nope" in answers[2].json()["detail"] and "paused" in answers[3].json()["detail"]
        writer = client.app.state.decision_writer  # type: ignore[attr-defined]
        assert (writer.groups, writer.rows) == (1, 2)
        ids = [r.json()["decision_id"] for r in answers[:2]]
    assert [row[COMPARED.index(Decision.__table__.c.unit_id)] for row in _stored(db, ids)] == [
        "exp",
        "exp",
    ]
