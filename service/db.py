"""Engine, sessions and migrations.

SQLite (the embedded default) is opened in WAL mode with a busy timeout. Transactions that
write start with ``BEGIN IMMEDIATE``: writers queue on the database lock up front instead of
failing with "database is locked" when a read transaction tries to upgrade. The service's
read-only transactions use a second engine with a deferred ``BEGIN`` (see
:func:`make_app_engines`), so reads never hold the write lock.
On PostgreSQL, ``database_schema`` sets the ``search_path`` so that one server can hold
several isolated stores (the tests use one schema per test).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc, text
from sqlalchemy.orm import Session, sessionmaker

from service.settings import Settings
from service.writer_lock import serialize_writers

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
ALEMBIC_INI = Path(__file__).with_name("alembic.ini")


def make_engine(settings: Settings) -> Engine:
    """Build the engine for ``settings`` (no connection is opened here).

    On SQLite every transaction starts with ``BEGIN IMMEDIATE`` (it takes the write lock):
    right for writers, and for tools that read and write in one session.
    """
    if settings.is_sqlite:
        return _sqlite_engine(settings, "BEGIN IMMEDIATE", settings.pool_size)
    return _postgres_engine(settings)


@dataclass(frozen=True)
class AppEngines:
    """The service's engines: one for transactions that write, one for read-only ones.

    On SQLite they differ, so that a read never takes or waits for the write lock and
    writers queue in the process instead of in SQLite's busy handler:

    * ``write``: ``BEGIN IMMEDIATE`` on a pool of **one** connection per process. Writers
      of one process wait for that connection on a queue (woken as soon as it is returned)
      instead of polling the database lock with SQLite's sleeping busy handler, which
      backs off up to 100 ms; only writers of *other* processes still meet the busy handler.
    * ``read``: deferred ``BEGIN`` (a WAL snapshot: it never blocks a writer nor waits for
      one) and ``PRAGMA query_only``, on a pool of ``pool_size`` connections.

    On PostgreSQL both are the same engine (MVCC readers take no lock that writers need).
    """

    write: Engine
    read: Engine

    def dispose(self) -> None:
        self.write.dispose()
        if self.read is not self.write:
            self.read.dispose()


def make_app_engines(settings: Settings) -> AppEngines:
    """The write and read engines of the service for ``settings`` (see :class:`AppEngines`)."""
    if settings.is_sqlite:
        return AppEngines(
            write=_sqlite_engine(
                settings, "BEGIN IMMEDIATE", pool_size=1, max_overflow=0, take_turns=True
            ),
            read=_sqlite_engine(settings, "BEGIN", settings.pool_size, query_only=True),
        )
    engine = _postgres_engine(settings)
    return AppEngines(write=engine, read=engine)


def _sqlite_engine(
    settings: Settings,
    begin: str,
    pool_size: int,
    max_overflow: int | None = None,
    query_only: bool = False,
    take_turns: bool = False,
) -> Engine:
    """``take_turns``: the service's write engine, whose transactions queue on a lock file
    across processes (:mod:`service.writer_lock`)."""
    url = settings.url
    timeout_s = settings.sqlite_busy_timeout_ms / 1000
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": timeout_s},
        pool_size=pool_size,
        max_overflow=settings.max_overflow if max_overflow is None else max_overflow,
        pool_timeout=max(timeout_s, 1.0),
    )
    database = engine.url.database
    if take_turns and database and ":memory:" not in url:
        serialize_writers(engine, database, timeout_s)  # first: before BEGIN IMMEDIATE
    busy = int(settings.sqlite_busy_timeout_ms)

    @event.listens_for(engine, "connect")
    def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (below)
        cur = dbapi_conn.cursor()
        if ":memory:" not in url:
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={busy}")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        if query_only:
            cur.execute("PRAGMA query_only=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _sqlite_begin(conn: Any) -> None:
        conn.exec_driver_sql(begin)

    return engine


def _postgres_engine(settings: Settings) -> Engine:
    connect_args: dict[str, Any] = {}
    if settings.database_schema:
        connect_args["options"] = f"-csearch_path={settings.database_schema}"
    engine = create_engine(
        settings.url,
        connect_args=connect_args,
        pool_size=settings.pool_size,
        max_overflow=settings.max_overflow,
    )
    _ping_when_idle(engine, settings.pool_ping_idle_s)
    return engine


def _ping_when_idle(engine: Engine, idle_s: float) -> None:
    """Check a pooled connection at checkout only when it has been idle for ``idle_s``.

    SQLAlchemy's ``pool_pre_ping`` pings at *every* checkout: one more round trip per
    request (a third of a decision's). A connection returned a moment ago is almost surely
    alive; one idle for a while may have been dropped (server restart, idle timeout in a
    proxy), and that one is pinged and, if dead, replaced (``DisconnectionError`` makes the
    pool discard it and take another). A drop in the idle window still fails its request,
    and SQLAlchemy then invalidates the whole pool, so one request sees it, not every one.
    """
    dialect = engine.dialect

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _taken(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < idle_s:
            return  # just connected, or returned a moment ago
        try:
            dialect.do_ping(dbapi_conn)
        except Exception as err:
            raise exc.DisconnectionError(f"pooled connection dropped: {err}") from err


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=False)


def alembic_config(settings: Settings) -> Any:
    """An Alembic ``Config`` pointing at the packaged migrations and at ``settings``' database."""
    from alembic.config import Config

    cfg = Config(str(ALEMBIC_INI))
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["settings"] = settings
    return cfg


def upgrade(settings: Settings, revision: str = "head") -> None:
    """Run ``alembic upgrade`` on the configured database (creating the PG schema if named)."""
    from alembic import command

    if settings.database_schema and not settings.is_sqlite:
        engine = make_engine(settings.model_copy(update={"database_schema": None}))
        with engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{settings.database_schema}"'))
        engine.dispose()
    command.upgrade(alembic_config(settings), revision)


def downgrade(settings: Settings, revision: str = "base") -> None:
    from alembic import command

    command.downgrade(alembic_config(settings), revision)
