"""Look-ups and conversions shared by the store modules."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.errors import NotFound
from service.models import Experiment, PolicyState

CHUNK = 500  # IN-list size for look-ups


def as_utc(d: dt.datetime) -> dt.datetime:
    """SQLite hands back naive datetimes (stored in UTC); make them aware."""
    return d if d.tzinfo is not None else d.replace(tzinfo=dt.UTC)


def jsonable(state: dict[str, Any]) -> dict[str, Any]:
    """Round-trip through JSON so that what we compare is what the database stores."""
    out: dict[str, Any] = json.loads(json.dumps(state))
    return out


def canonical(d: dict[str, Any]) -> str:
    """A policy state as a key-order-independent string, for equality checks."""
    return json.dumps(d, sort_keys=True)


def load(session: Session, key: str) -> tuple[Experiment, PolicyState]:
    """The experiment ``key`` and its policy state, unlocked; :class:`NotFound` if absent."""
    row = session.execute(
        select(Experiment, PolicyState)
        .join(PolicyState, PolicyState.experiment_id == Experiment.id)
        .where(Experiment.key == key)
    ).one_or_none()
    if row is None:
        raise NotFound(f"no experiment with key {key!r}")
    return row[0], row[1]


def lock(session: Session, key: str) -> tuple[Experiment, PolicyState]:
    """The experiment ``key`` and its policy state, the state row locked until commit.

    ``populate_existing`` makes the session read the rows again after the lock is granted,
    so the caller sees what the previous holder committed: the policy state, and the
    experiment row too (its arms change under the same lock, see :mod:`.arms`).
    """
    exp = session.scalar(select(Experiment).where(Experiment.key == key))
    if exp is None:
        raise NotFound(f"no experiment with key {key!r}")
    state = session.scalar(
        select(PolicyState)
        .where(PolicyState.experiment_id == exp.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert state is not None
    fresh = session.scalar(
        select(Experiment).where(Experiment.id == exp.id).execution_options(populate_existing=True)
    )
    assert fresh is not None
    return fresh, state
