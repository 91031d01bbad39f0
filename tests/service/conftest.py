"""Database fixtures: every test runs on SQLite and on PostgreSQL, each on a fresh store.

SQLite: a new file under ``tmp_path``. PostgreSQL: a new schema with a unique name
(``bf_test_<uuid>``) on the server at ``BANDIT_FUSION_TEST_POSTGRES_URL``, dropped afterwards,
so parallel runs by several people on one server never collide. If the server cannot be
reached the PostgreSQL cases are skipped locally, and fail when ``CI`` is set.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, func, select, text

from service.app import create_app
from service.db import make_engine, make_sessionmaker, upgrade
from service.models import Base, PolicyState, PolicyUpdate
from service.schemas import ExperimentCreate
from service.settings import Settings
from service.store import audit, experiments
from service.store import keys as key_store

PG_URL = os.environ.get(
    "BANDIT_FUSION_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
_pg_error: list[str | None] = []


def pg_unreachable() -> str | None:
    """None when PostgreSQL answers, else the reason (checked once per session)."""
    if not _pg_error:
        try:
            eng = create_engine(PG_URL, connect_args={"connect_timeout": 3})
            with eng.connect() as conn:
                conn.execute(text("SELECT 1"))
            eng.dispose()
            _pg_error.append(None)
        except Exception as err:
            _pg_error.append(f"{type(err).__name__}: {err}".splitlines()[0])
    return _pg_error[0]


def require_pg() -> None:
    reason = pg_unreachable()
    if reason is not None:
        msg = f"PostgreSQL at {PG_URL} unreachable ({reason})"
        if os.environ.get("CI"):
            pytest.fail(msg + "; CI is set, so this is a failure, not a skip")
        pytest.skip(msg)


def make_settings(backend: str, tmp_path: Path, schema: str | None = None, **kw: Any) -> Settings:
    base: dict[str, Any] = {
        "settle_interval_s": 0,
        "auth_cache_ttl_s": 0,
        "environment": "local",
        "pool_size": 5,
    }
    base.update(kw)
    if backend == "sqlite":
        return Settings(_env_file=None, database_url=None, sqlite_path=tmp_path / "test.db", **base)  # type: ignore[call-arg]
    return Settings(_env_file=None, database_url=PG_URL, database_schema=schema, **base)  # type: ignore[call-arg]


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A fresh, uniquely named PostgreSQL schema, dropped after the test."""
    require_pg()
    name = f"bf_test_{uuid.uuid4().hex[:16]}"
    eng = create_engine(PG_URL)
    with eng.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{name}"'))
    try:
        yield name
    finally:
        with eng.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        eng.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def settings(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    """Settings for an empty store of the test's backend (schema not created yet)."""
    if backend == "sqlite":
        return make_settings("sqlite", tmp_path)
    schema = request.getfixturevalue("pg_schema")
    return make_settings("postgresql", tmp_path, schema)


@pytest.fixture
def db(settings: Settings) -> Iterator[Settings]:
    """``settings`` with the tables created."""
    engine = make_engine(settings)
    Base.metadata.create_all(engine)
    engine.dispose()
    yield settings


@pytest.fixture
def session_factory(db: Settings) -> Iterator[Any]:
    engine = make_engine(db)
    yield make_sessionmaker(engine)
    engine.dispose()


@pytest.fixture
def keys(session_factory: Any) -> dict[str, str]:
    """One raw API key per scope."""
    out = {}
    with session_factory() as session:
        for scope in key_store.SCOPES:
            out[scope], _ = key_store.create_api_key(session, scope, f"test {scope}")
    return out


class Api:
    """A TestClient with the three keys at hand."""

    def __init__(self, client: TestClient, keys: dict[str, str]) -> None:
        self.client = client
        self.keys = keys

    def h(self, scope: str = "admin", **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[scope]}", **extra}

    def post(self, url: str, json: Any = None, scope: str = "admin", **headers: str) -> Any:
        return self.client.post(url, json=json, headers=self.h(scope, **headers))

    def get(self, url: str, scope: str = "read", **params: Any) -> Any:
        return self.client.get(url, headers=self.h(scope), params=params)

    def experiment(self, key: str = "exp", **spec: Any) -> dict[str, Any]:
        body = {"key": key, "arms": ["a", "b", "c"], "policy": "thompson", "seed": 7, **spec}
        r = self.post("/v1/experiments", body)
        assert r.status_code == 201, r.text
        return dict(r.json())

    def decide(self, key: str = "exp", unit: str = "u1") -> dict[str, Any]:
        r = self.post(f"/v1/experiments/{key}/decisions", {"unit_id": unit}, scope="write")
        assert r.status_code == 201, r.text
        return dict(r.json())


@pytest.fixture
def api(db: Settings, keys: dict[str, str]) -> Iterator[Api]:
    with TestClient(create_app(db)) as client:
        yield Api(client, keys)


def migrated_experiment(settings: Settings, spec: ExperimentCreate) -> tuple[Any, str]:
    """A migrated store holding one experiment, for tests that start real ``serve`` processes.

    Returns the session factory and a raw write key.
    """
    upgrade(settings)
    factory = make_sessionmaker(make_engine(settings))
    with factory() as session:
        key, _ = key_store.create_api_key(session, "write", spec.key)
        experiments.create_experiment(session, spec)
    return factory, key


def assert_log_replays(session: Any, key: str, observations: int) -> None:
    """The policy learned ``observations`` once each, logged every update, and live == rebuild."""
    state = session.scalars(select(PolicyState)).one()
    n_updates = session.scalar(select(func.count()).select_from(PolicyUpdate))
    assert state.version == n_updates - 1  # one log row per update, plus creation
    assert sum(state.state["pulls"]) == observations
    result = audit.rebuild(session, key)
    assert result.observations == observations
    assert result.equal, "live policy state differs from the rebuild"
