"""Decisions: choose an arm and log it (``POST /v1/experiments/{key}/decisions``)."""

from __future__ import annotations

import secrets
import uuid

from sqlalchemy import bindparam, insert, select
from sqlalchemy.orm import Session

from service import policies
from service.errors import Conflict, NotFound
from service.models import Decision, Experiment, PolicyState, utcnow
from service.schemas import DecisionCreate, DecisionOut

_DECIDE = (
    select(
        Experiment.id,
        Experiment.arms,
        Experiment.status,
        Experiment.when_inactive,
        Experiment.fallback_arm,
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


def decide(session: Session, key: str, body: DecisionCreate) -> DecisionOut:
    """Choose an arm for ``body.unit_id`` and commit the decision before returning it."""
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
    exp_id, arms, status, when_inactive, fallback_arm, version, allocation = row
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
    decision_id = uuid.uuid4().hex
    now = utcnow()
    conn.execute(
        _INSERT_DECISION,
        {
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
            "created_at": now,
        },
    )
    session.commit()
    return DecisionOut(
        decision_id=decision_id,
        experiment=key,
        unit_id=body.unit_id,
        arm=arms[arm],
        arm_index=arm,
        probabilities=dict(zip(arms, probabilities, strict=True)),
        policy_version=version,
        fallback=fallback,
        created_at=now,
    )
