"""SQLite writers of several processes take turns on the lock file (service.writer_lock).

Two write engines of the service (two pools, two lock-file descriptors: as two worker
processes would have) on one database file: the second writer waits exactly while the
first one's transaction is open, commit or rollback hands the turn over at once, and a
process killed inside a transaction frees it.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import exc, text

from service.db import make_app_engines
from service.writer_lock import lock_path
from tests.service.conftest import make_settings


def _writers(tmp_path: Path, n: int, **settings_kw: Any) -> list:
    settings = make_settings("sqlite", tmp_path, **settings_kw)
    engines = [make_app_engines(settings).write for _ in range(n)]
    with engines[0].connect() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS t (x INTEGER)"))
        conn.commit()
    return engines


def _second_waits_for_first(first, second, end) -> tuple[float, float]:
    """First opens a write transaction, holds it 0.45 s, then ``end``s it; the second begins
    meanwhile. Returns (when the first ended, when the second's transaction began)."""
    holding, done = threading.Event(), {}

    def later() -> None:
        holding.wait()
        with second.connect() as conn:
            conn.execute(text("INSERT INTO t VALUES (2)"))  # BEGIN IMMEDIATE: waits its turn
            done["began"] = time.monotonic()
            conn.commit()

    thread = threading.Thread(target=later)
    thread.start()
    with first.connect() as conn:
        conn.execute(text("INSERT INTO t VALUES (1)"))
        holding.set()
        time.sleep(0.45)  # SQLite's busy handler would be sleeping 100 ms a try by now
        done["ended"] = time.monotonic()
        end(conn)
    thread.join(10)
    return done["ended"], done["began"]


def _held(database: Path) -> bool:
    fd = os.open(lock_path(str(database)), os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


@pytest.mark.parametrize("end", ["commit", "rollback"])
def test_the_turn_is_held_from_begin_to_end(tmp_path, end):
    (engine,) = _writers(tmp_path, 1)
    database = tmp_path / "test.db"
    with engine.connect() as conn:
        assert not _held(database)
        conn.execute(text("INSERT INTO t VALUES (1)"))  # BEGIN IMMEDIATE
        assert _held(database)
        getattr(conn, end)()
        assert not _held(database)  # the connection is still checked out: freed by the end
        conn.execute(text("INSERT INTO t VALUES (2)"))
        assert _held(database)
    assert not _held(database)  # returned to the pool: rolled back, freed


@pytest.mark.parametrize("end", ["commit", "rollback"])
def test_a_writer_waits_for_the_open_transaction_only(tmp_path, end):
    first, second = _writers(tmp_path, 2)
    ended, began = _second_waits_for_first(first, second, lambda c: getattr(c, end)())
    assert began >= ended  # never inside the first one's transaction
    assert began - ended < 0.05  # handed over at once, not after a busy-wait sleep
    with second.connect() as conn:
        rows = sorted(x for (x,) in conn.execute(text("SELECT x FROM t")))
    assert rows == ([1, 2] if end == "commit" else [2])


def _holder(database: Path) -> subprocess.Popen[str]:
    """Another process that takes the writers' turn and keeps it (until killed)."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time; "
            f"fd = os.open({lock_path(str(database))!r}, os.O_RDWR | os.O_CREAT); "
            "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


def test_a_killed_writer_frees_the_turn(tmp_path):
    (engine,) = _writers(tmp_path, 1)
    holder = _holder(tmp_path / "test.db")
    try:
        waited: dict[str, float] = {}

        def write() -> None:
            start = time.monotonic()
            with engine.connect() as conn:
                conn.execute(text("INSERT INTO t VALUES (3)"))
                conn.commit()
            waited["s"] = time.monotonic() - start

        thread = threading.Thread(target=write)
        thread.start()
        thread.join(0.3)
        assert thread.is_alive()  # waiting for the holder's turn
        os.kill(holder.pid, signal.SIGKILL)
        thread.join(10)
        assert not thread.is_alive() and waited["s"] < 5
    finally:
        holder.kill()
        holder.wait()


def test_a_turn_never_handed_over_fails_after_the_busy_timeout(tmp_path):
    """As SQLite itself would: "database is locked" after ``sqlite_busy_timeout_ms``."""
    (engine,) = _writers(tmp_path, 1, sqlite_busy_timeout_ms=300)
    holder = _holder(tmp_path / "test.db")
    try:
        start = time.monotonic()
        with (
            pytest.raises(exc.OperationalError, match="database is locked"),
            engine.connect() as conn,
        ):
            conn.execute(text("INSERT INTO t VALUES (4)"))
        assert 0.3 <= time.monotonic() - start < 3
    finally:
        holder.kill()
        holder.wait()
    with engine.connect() as conn:  # the turn is free again: nothing was left half-done
        conn.execute(text("INSERT INTO t VALUES (5)"))
        conn.commit()
        assert [x for (x,) in conn.execute(text("SELECT x FROM t"))] == [5]
