"""Decisions: choose an arm and log it (``POST /v1/experiments/{key}/decisions``)."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from sqlalchemy import bindparam, insert, select
from sqlalchemy.orm import Session

from service import policies
from service.errors import Conflict, NotFound
from service.models import Decision, Experiment, PolicyState, utcnow
from service.recommenders import ItemRequest, Recommender
from service.schemas import DecisionCreate, DecisionOut, ItemOut
from service.serving import Served, backing, serve_allocate, serve_fuse
from service.store.decision_groups import DecisionWriter

_DECIDE = (
    select(
        Experiment.id,
        Experiment.arms,
        Experiment.status,
        Experiment.when_inactive,
        Experiment.fallback_arm,
        Experiment.mode,
        Experiment.recommenders,
        Experiment.fuser,
        PolicyState.version,
        PolicyState.allocation,
    )
    .join(PolicyState, PolicyState.experiment_id == Experiment.id)
    .where(Experiment.key == bindparam("key"))
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
    row = conn.execute(_DECIDE, {"key": key}).one_or_none()
    if row is None:
        raise NotFound(f"no experiment with key {key!r}")
    (exp_id, arms, status, when_inactive, fallback_arm, mode, recommenders, fuser) = row[:8]
    version, allocation = row[8:]
    seed = new_seed()
    if status != "active":
        if when_inactive == "reject":
            raise Conflict(f"experiment {key!r} is {status}; it takes no decisions")
        probabilities = [0.0] * len(arms)
        probabilities[fallback_arm] = 1.0
        arm, fallback = fallback_arm, True
    else:
        probabilities = allocation
        arm, fallback = policies.draw(probabilities, seed), False
    served = None
    if recommenders:
        if conn.dialect.name != "postgresql":
            # SQLite: the read took the write lock (BEGIN IMMEDIATE, one connection per
            # process); release it while the recommenders score, take it again to insert
            session.commit()
        recs = backing(recommenders, serving.models)
        req = ItemRequest(
            body.k or serving.default_k,
            np.asarray(body.exclude, dtype=np.int64),
            None if body.candidates is None else np.asarray(body.candidates, dtype=np.int64),
        )
        if mode == "fuse" and not fallback:
            served = serve_fuse(
                recs, fuser or "slot-mix", probabilities, seed, body.unit_id, req, serving.max_k
            )
            arm = served.arm
        else:
            served = serve_allocate(recs, arm, probabilities, body.unit_id, req, serving.max_k)
        if conn.dialect.name != "postgresql" and writer is None:
            conn = session.connection()
    decision_id = uuid.uuid4().hex
    now = utcnow()
    values = {
        "id": decision_id,
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
        "created_at": now,
    }
    if writer is None:
        conn.execute(_INSERT_DECISION, values)
        session.commit()
    else:
        session.rollback()  # nothing written here; the connection goes back to the pool
        writer.write(values)
    return DecisionOut(
        decision_id=decision_id,
        experiment=key,
        unit_id=body.unit_id,
        arm=arms[arm],
        arm_index=arm,
        probabilities=dict(zip(arms, probabilities, strict=True)),
        policy_version=version,
        fallback=fallback,
        items=None if served is None else _items_out(served, arms),
        created_at=now,
    )


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
        )
        for i in served.items
    ]
