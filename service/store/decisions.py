"""Decisions: choose an arm and log it (``POST /v1/experiments/{key}/decisions``)."""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import Connection, Row, bindparam, insert, select
from sqlalchemy.orm import Session

from service import policies
from service.batching import Ranker
from service.errors import Conflict, NotFound
from service.models import Decision, Experiment, PolicyState, utcnow
from service.recommenders import ItemRequest, Recommender
from service.schemas import DecisionCreate, DecisionOut, ItemOut
from service.serving import Served, backing, serve_allocate
from service.store.arms import fuse_active, serving_arms
from service.store.common import check_deadline

if TYPE_CHECKING:
    from service.store.decision_groups import DecisionWriter

_DECIDE_COLUMNS = (
    Experiment.id,
    Experiment.arms,
    Experiment.status,
    Experiment.when_inactive,
    Experiment.fallback_arm,
    Experiment.mode,
    Experiment.recommenders,
    Experiment.fuser,
    Experiment.fuser_params,
    Experiment.retired,
    PolicyState.version,
    PolicyState.allocation,
)
_DECIDE = (
    select(*_DECIDE_COLUMNS)
    .join(PolicyState, PolicyState.experiment_id == Experiment.id)
    .where(Experiment.key == bindparam("key"))
)
# the same for the distinct keys of a group of decisions (see read_group)
_DECIDE_MANY = (
    select(Experiment.key, *_DECIDE_COLUMNS)
    .join(PolicyState, PolicyState.experiment_id == Experiment.id)
    .where(Experiment.key.in_(bindparam("keys", expanding=True)))
)
_INSERT_DECISION = insert(Decision.__table__)  # type: ignore[arg-type]


def new_seed() -> int:
    """A fresh seed for one decision's draw (logged with it, so the draw can be replayed)."""
    return secrets.randbits(63)


@dataclass(frozen=True)
class Serving:
    """What a decision with items needs from the app: the loaded models and the limits."""

    models: Mapping[str, Recommender]
    default_k: int = 10
    max_k: int = 100
    ranker: Ranker | None = None  # None: each decision's lists scored alone, at once


NO_MODELS = Serving({})


def decide(
    session: Session,
    key: str,
    body: DecisionCreate,
    serving: Serving = NO_MODELS,
    writer: DecisionWriter | None = None,
) -> DecisionOut:
    """Choose an arm for ``body.unit_id`` (and its items, when its arms have recommenders)
    and commit the decision before returning it. Nothing is stored when the items cannot be
    computed (:class:`~service.errors.Invalid`).

    With a ``writer`` the row is committed by its group commit instead of by ``session``
    (then ``session`` only reads, and may be a read-only one: its connection is released
    before the row is queued)."""
    # Core statements on the session's connection: this is the hot path (no ORM overhead).
    # On PostgreSQL the two statements run in autocommit mode: no BEGIN / COMMIT round trips;
    # the INSERT is durable when it returns, and the SELECT needs no transaction. (SQLite
    # keeps its BEGIN IMMEDIATE transaction: there a commit is local and cheap.)
    if session.get_bind().dialect.name == "postgresql":
        conn = session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
    else:
        conn = session.connection()
    read_at = time.monotonic()  # (before the read: the deadline bound is conservative)
    row = conn.execute(_DECIDE, {"key": key}).one_or_none()
    if row is None:
        raise NotFound(f"no experiment with key {key!r}")
    arms = row.arms
    seed = new_seed()
    arm, probabilities, fallback = _choose(key, row, seed)
    served = None
    if row.recommenders:
        if conn.dialect.name != "postgresql":
            # SQLite: the read took the write lock (BEGIN IMMEDIATE, one connection per
            # process); release it while the recommenders score, take it again to insert
            session.commit()
        recs = backing(serving_arms(row.recommenders, row.retired), serving.models)
        req = ItemRequest(
            body.k or serving.default_k,
            np.asarray(body.exclude, dtype=np.int64),
            None if body.candidates is None else np.asarray(body.candidates, dtype=np.int64),
        )
        if row.mode == "fuse" and not fallback:
            served = fuse_active(
                recs,
                row.fuser or "slot-mix",
                probabilities,
                seed,
                body.unit_id,
                req,
                serving.max_k,
                row.fuser_params,
                serving.ranker,
            )
            arm = served.arm
        else:
            served = serve_allocate(
                recs, arm, probabilities, body.unit_id, req, serving.max_k, serving.ranker
            )
        if conn.dialect.name != "postgresql" and writer is None:
            conn = session.connection()
    values = _values(row.id, body, arm, probabilities, row.version, seed, fallback, served)
    if writer is None:
        check_deadline(read_at)  # (on SQLite under the write lock: the commit follows)
        conn.execute(_INSERT_DECISION, values)
        session.commit()
    else:
        session.rollback()  # nothing written here; the connection goes back to the pool
        writer.write(values, read_at)
    return _out(key, body, arms, values, served)


def _choose(key: str, row: Row[Any], seed: int) -> tuple[int, list[float], bool]:
    """(arm, probabilities, fallback) for an experiment row of ``_DECIDE``; 409 when the
    experiment is not active and rejects decisions."""
    if row.status != "active":
        if row.when_inactive == "reject":
            raise Conflict(f"experiment {key!r} is {row.status}; it takes no decisions")
        probabilities = [0.0] * len(row.arms)
        probabilities[row.fallback_arm] = 1.0
        return row.fallback_arm, probabilities, True
    allocation: list[float] = row.allocation
    return policies.draw(allocation, seed), allocation, False


def _values(
    exp_id: int,
    body: DecisionCreate,
    arm: int,
    probabilities: list[float],
    version: int,
    seed: int,
    fallback: bool,
    served: Served | None,
) -> dict[str, Any]:
    """The ``decisions`` row of one decision (a new id, the time now)."""
    return {
        "id": uuid.uuid4().hex,
        "experiment_id": exp_id,
        "unit_id": body.unit_id,
        "arm": arm,
        "probabilities": probabilities,
        "policy_version": version,
        "seed": seed,
        "fallback": fallback,
        "context": body.context,
        "served_items": body.served_items,
        "items": None if served is None else [i.as_json() for i in served.items],
        "created_at": utcnow(),
    }


def _out(
    key: str, body: DecisionCreate, arms: list[str], v: dict[str, Any], served: Served | None
) -> DecisionOut:
    return DecisionOut(
        decision_id=v["id"],
        experiment=key,
        unit_id=body.unit_id,
        arm=arms[v["arm"]],
        arm_index=v["arm"],
        probabilities=dict(zip(arms, v["probabilities"], strict=True)),
        policy_version=v["policy_version"],
        fallback=v["fallback"],
        items=None if served is None else _items_out(served, arms),
        created_at=v["created_at"],
    )


#: What :func:`read_group` gives for one request: the row to insert and the answer to send
#: once it is committed; the error to answer; or None: its arms have recommenders, so the
#: request decides itself (scoring is not done by the group's thread).
GroupItem = tuple[dict[str, Any], DecisionOut] | Exception | None


def read_group(conn: Connection, requests: list[tuple[str, DecisionCreate]]) -> list[GroupItem]:
    """Decide a group of plain decisions with **one** read of their experiments (and their
    allocations): the rows are those :func:`decide` would store, each with its own seed."""
    keys = sorted({key for key, _ in requests})
    rows = {r.key: r for r in conn.execute(_DECIDE_MANY, {"keys": keys})}
    out: list[GroupItem] = []
    for key, body in requests:
        row = rows.get(key)
        if row is None:
            out.append(NotFound(f"no experiment with key {key!r}"))
            continue
        if row.recommenders:
            out.append(None)
            continue
        seed = new_seed()
        try:  # one request's error is its own: the rest of the group goes on
            arm, probabilities, fallback = _choose(key, row, seed)
            values = _values(row.id, body, arm, probabilities, row.version, seed, fallback, None)
            out.append((values, _out(key, body, row.arms, values, None)))
        except Exception as err:
            out.append(err)
    return out


def _items_out(served: Served, arms: list[str]) -> list[ItemOut] | None:
    if not served.items:
        return None
    return [
        ItemOut(
            item_id=i.item,
            position=i.position,
            arm=arms[i.arm],
            source_prob=i.source_prob,
            propensity=i.propensity,
            credit=None if i.credit is None else {arms[int(a)]: w for a, w in i.credit},
        )
        for i in served.items
    ]
