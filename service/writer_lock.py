"""SQLite writers of several processes take turns on a lock file, not on SQLite's busy wait.

SQLite lets one writer at a time hold a database file. A second process that wants to
write retries on SQLite's busy handler, which *sleeps* between tries (up to 100 ms a
try, whatever the holder's transaction takes): with two service workers on one file, a
write of a millisecond can keep another waiting for tens of milliseconds. The service's
write connections therefore take an exclusive ``flock`` on ``<database>-writer.lock``
before ``BEGIN IMMEDIATE`` and drop it as soon as their transaction commits or rolls back:
a waiter takes it within a millisecond (and the kernel frees it when a process dies,
``kill -9`` included). Within one process the write pool holds a single connection, so the
lock is never asked for twice by one process.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import time
from typing import Any

from sqlalchemy import Engine, event, exc

_FD = "writer_lock_fd"  # key of the lock file's descriptor in a pooled connection's info


def lock_path(database: str) -> str:
    """The lock file beside SQLite file ``database``."""
    return f"{database}-writer.lock"


def take(fd: int, timeout_s: float) -> None:
    """Lock ``fd`` exclusively, waiting at most ``timeout_s`` (SQLite's busy timeout: a
    holder that never ends its transaction fails the waiters, as SQLite itself would).

    ``flock`` cannot wait with a deadline, so the wait polls: first at once, then every
    50 µs, doubling up to 1 ms, so that a turn handed over is taken within a millisecond.
    """
    deadline = time.monotonic() + timeout_s
    pause = 50e-6
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise exc.OperationalError(
                    "BEGIN IMMEDIATE",
                    None,
                    sqlite3.OperationalError(
                        f"database is locked: another writer held its turn for {timeout_s:g} s"
                    ),
                ) from None
            time.sleep(pause)
            pause = min(2 * pause, 1e-3)


def serialize_writers(engine: Engine, database: str, timeout_s: float) -> None:
    """Make every transaction of ``engine`` hold ``<database>-writer.lock`` from its BEGIN
    to its COMMIT or ROLLBACK (install before the engine's own ``begin`` listener); a
    writer waits at most ``timeout_s`` for its turn."""
    path = lock_path(database)
    dialect = engine.dialect
    commit, rollback = dialect.do_commit, dialect.do_rollback

    @event.listens_for(engine, "connect")
    def _open(_dbapi_conn: Any, record: Any) -> None:
        record.info[_FD] = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)

    @event.listens_for(engine, "close")
    def _close(_dbapi_conn: Any, record: Any) -> None:
        fd = record.info.pop(_FD, None)
        if fd is not None:
            os.close(fd)  # (closing drops the lock too)

    @event.listens_for(engine, "begin")
    def _take(conn: Any) -> None:
        fd = conn.connection.info.get(_FD)
        if fd is not None:
            take(fd, timeout_s)

    def _drop(proxied: Any) -> None:
        try:
            fd = proxied.info.get(_FD)
        except NotImplementedError:  # the dialect's first-connect probe: no pool record
            return
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def do_commit(proxied: Any) -> None:
        try:
            commit(proxied)
        finally:
            _drop(proxied)

    def do_rollback(proxied: Any) -> None:
        try:
            rollback(proxied)
        finally:
            _drop(proxied)

    dialect.do_commit = do_commit  # type: ignore[method-assign,assignment]
    dialect.do_rollback = do_rollback  # type: ignore[method-assign,assignment]
