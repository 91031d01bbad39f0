"""Group commit of decisions: many concurrent decisions, one read, one INSERT, one commit.

Without grouping a decision on PostgreSQL costs its own read (experiment and allocation) and
its own insert; with ``synchronous_commit`` on, the insert waits for the server to flush its
WAL, and each statement costs CPU in the Python database layers. :class:`DecisionWriter`
has writer threads (two by default) in each process; one at a time takes every decision
queued meanwhile (up to ``max_rows``; optionally waiting ``max_wait_s`` for more after the
first), then

1. reads the experiments of the group's plain decisions once (one ``SELECT`` for their
   distinct keys) and draws each decision's arm with its own fresh seed, exactly as
   :func:`service.store.decisions.decide` does;
2. stores all the rows with **one** statement: on PostgreSQL an ``INSERT ... SELECT FROM
   unnest(arrays)`` in autocommit mode (one round trip that is also the commit); on SQLite
   an executemany inside the ``BEGIN IMMEDIATE`` transaction that made the read;
3. only then answers each request.

Durability is the same as one insert per decision: a request is answered after the commit
that holds its row, and the rows are those an ungrouped decision stores. Decisions whose
arms have recommenders are scored on the request's own thread (scoring is CPU work that
must not hold up the group) and only their row is queued (:meth:`DecisionWriter.write`).

404 and 409 are answered per request as without grouping. When the group statement fails,
each of its rows is inserted again on its own, so one bad row fails only its own request
(with the database's error, as without grouping) and the others are stored.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, insert, text

from service.errors import Unavailable
from service.models import Decision
from service.schemas import DecisionCreate, DecisionOut
from service.store import decisions
from service.store.common import check_deadline
from service.store.grouping import GroupWriter, fail, resolve

_TABLE = Decision.__table__


@dataclass
class _Pending:
    """One queued request: a row to store (``values``), or a plain decision still to be
    read and drawn (``request``); ``future`` is resolved after the group's commit."""

    future: Future[Any]
    values: dict[str, Any] | None = None
    request: tuple[str, DecisionCreate] | None = None
    answer: DecisionOut | None = None
    read_at: float = 0.0  # time.monotonic() when the decision read its experiment


class DecisionWriter(GroupWriter):
    """Threads that decide and store queued decisions in groups (module docstring).

    Parameters
    ----------
    engine
        Engine of the store (the service's write engine).
    max_rows
        Most decisions in one group.
    max_wait_s, threads
        As for :class:`~service.store.grouping.GroupWriter`.
    """

    name = "decision writer"

    def __init__(
        self, engine: Engine, max_rows: int = 200, max_wait_s: float = 0.0, threads: int = 2
    ) -> None:
        if max_rows < 1:
            raise ValueError("max_rows must be at least 1")
        super().__init__(max_rows, max_wait_s, threads)
        self.engine = engine
        self.max_rows = max_rows
        self.groups = 0  # statements that stored a group (for tests and benchmarks)
        self.rows = 0

    def decide(self, key: str, body: DecisionCreate) -> Future[DecisionOut | None]:
        """Queue a decision for ``body`` on experiment ``key``: the group reads the
        experiment once for all its decisions, draws each arm and stores the rows. The
        future gives the answer once its row is committed, raises the request's
        :class:`~service.errors.ServiceError` (404, 409) or database error, or gives None
        when the experiment's arms have recommenders: then the caller decides itself
        (:func:`service.store.decisions.decide` with this writer)."""
        fut: Future[DecisionOut | None] = Future()
        self._put(_Pending(fut, request=(key, body)))
        return fut

    def write(self, row: dict[str, Any], read_at: float) -> None:
        """Store one decision row that read its experiment at ``read_at``
        (``time.monotonic()``); return once it is committed, or raise the database's error
        for this row (other rows of its group are not affected), or
        :class:`~service.errors.Unavailable` past the decision deadline (nothing stored)."""
        fut: Future[None] = Future()
        self._put(_Pending(fut, values=row, read_at=read_at))
        fut.result()

    def _write(self, group: list[_Pending]) -> None:
        """Read and draw the group's plain decisions, insert every row in one statement
        (on failure, each row alone), then resolve each future."""
        with self.engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                # autocommit: the read needs no transaction, and the one INSERT statement
                # is atomic and committed when it returns (one round trip each)
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
                ready = _in_time(self._read(conn, group))
                ok = _insert_all(conn, ready)
            else:
                with conn.begin() as tx:  # BEGIN IMMEDIATE: read and write in one lock
                    ready = _in_time(self._read(conn, group))
                    ok = _insert_all(conn, ready)
                    if not ok:
                        tx.rollback()
        if ok:
            with self._lock:
                self.groups += bool(ready)
                self.rows += len(ready)
            for p in ready:
                resolve(p.future, p.answer)
            return
        for p in ready:  # the group failed: each row alone, so one bad row fails alone
            try:
                check_deadline(p.read_at)
                self._insert_alone(p.values or {})
            except Exception as err:
                fail(p.future, err)
            else:
                with self._lock:
                    self.rows += 1
                resolve(p.future, p.answer)

    def _insert_alone(self, values: dict[str, Any]) -> None:
        with self.engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                _execute(conn.execution_options(isolation_level="AUTOCOMMIT"), [values])
            else:
                with conn.begin():
                    _execute(conn, [values])

    def _read(self, conn: Connection, group: list[_Pending]) -> list[_Pending]:
        """Fill in the rows of the group's plain decisions (one read); resolve at once
        those that end here (404, 409, recommenders, a failed read). The pending rows."""
        asks = [p for p in group if p.request is not None]
        if asks:
            try:
                read_at = time.monotonic()  # (before the read: the bound is conservative)
                decided = decisions.read_group(conn, [p.request for p in asks if p.request])
            except Exception as err:
                for p in asks:
                    fail(p.future, err)
                decided = []
            for p, item in zip(asks, decided, strict=False):
                if item is None:
                    resolve(p.future, None)
                elif isinstance(item, Exception):  # its own error: the others go on
                    fail(p.future, item)
                else:
                    p.values, p.answer = item
                    p.read_at = read_at
        return [p for p in group if p.values is not None]


def _in_time(ready: list[_Pending]) -> list[_Pending]:
    """The rows of ``ready`` still within the decision deadline (see
    :func:`~service.store.common.check_deadline`); the others are answered 503 here."""
    out = []
    for p in ready:
        try:
            check_deadline(p.read_at)
        except Unavailable as err:
            fail(p.future, err)
        else:
            out.append(p)
    return out


def _insert_all(conn: Connection, ready: list[_Pending]) -> bool:
    """Insert the rows of ``ready`` in one statement; False if it failed."""
    if not ready:
        return True
    try:
        _execute(conn, [p.values or {} for p in ready])
    except Exception:
        return False
    return True


_PG_ARRAY_TYPES = {  # column -> PostgreSQL array type, for the unnest() group insert
    "id": "text[]",
    "experiment_id": "bigint[]",
    "unit_id": "text[]",
    "arm": "integer[]",
    "probabilities": "json[]",
    "policy_version": "bigint[]",
    "seed": "bigint[]",
    "fallback": "boolean[]",
    "context": "json[]",
    "served_items": "json[]",
    "items": "json[]",
    "created_at": "timestamptz[]",
}
assert set(_PG_ARRAY_TYPES) == set(_TABLE.columns.keys())
_JSON_COLUMNS = [c for c, t in _PG_ARRAY_TYPES.items() if t == "json[]"]
# Built from the constant mapping above only (no user input): column names and types.
_PG_INSERT_DECISIONS = text(
    f"INSERT INTO decisions ({', '.join(_PG_ARRAY_TYPES)}) SELECT * FROM unnest("  # noqa: S608
    + ", ".join(f"CAST(:{c} AS {t})" for c, t in _PG_ARRAY_TYPES.items())
    + ")"
)


def _execute(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` with one statement.

    PostgreSQL: ``INSERT ... SELECT FROM unnest(arrays)``, one parameter per column whatever
    the group size (a multi-row VALUES list costs SQLAlchemy and the driver much Python work
    per parameter). JSON values are encoded as SQLAlchemy encodes them for a one-row insert
    (``json.dumps``; ``None`` becomes JSON ``null``, the JSON type's default), so the stored
    text is the same. SQLite: one executemany (the caller's transaction makes it one commit).
    """
    if conn.dialect.name == "postgresql":
        dumps = conn.dialect._json_serializer or json.dumps
        arrays = {c: [r[c] for r in rows] for c in _PG_ARRAY_TYPES}
        for c in _JSON_COLUMNS:
            arrays[c] = [dumps(v) for v in arrays[c]]
        conn.execute(_PG_INSERT_DECISIONS, arrays)
    else:
        conn.execute(insert(_TABLE), rows)  # type: ignore[arg-type]
