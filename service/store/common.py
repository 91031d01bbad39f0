"""Look-ups and conversions shared by the store modules."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import bindparam, select
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


# Built once: the hot paths of every request execute these with their parameters (a
# statement built per call costs more Python than the SQLite query it runs).
_LOAD = (
    select(Experiment, PolicyState)
    .join(PolicyState, PolicyState.experiment_id == Experiment.id)
    .where(Experiment.key == bindparam("key"))
)
_BY_KEY = select(Experiment).where(Experiment.key == bindparam("key"))
_LOCK_STATE = (
    select(PolicyState)
    .where(PolicyState.experiment_id == bindparam("id"))
    .with_for_update()
    .execution_options(populate_existing=True)
)
_FRESH = (
    select(Experiment)
    .where(Experiment.id == bindparam("id"))
    .execution_options(populate_existing=True)
)


def load(session: Session, key: str) -> tuple[Experiment, PolicyState]:
    """The experiment ``key`` and its policy state, unlocked; :class:`NotFound` if absent."""
    row = session.execute(_LOAD, {"key": key}).one_or_none()
    if row is None:
        raise NotFound(f"no experiment with key {key!r}")
    return row[0], row[1]


def lock(session: Session, key: str) -> tuple[Experiment, PolicyState]:
    """The experiment ``key`` and its policy state, the state row locked until commit.

    ``populate_existing`` makes the session read the rows again after the lock is granted,
    so the caller sees what the previous holder committed: the policy state, and the
    experiment row too (its arms change under the same lock, see :mod:`.arms`).
    """
    exp = session.scalar(_BY_KEY, {"key": key})
    if exp is None:
        raise NotFound(f"no experiment with key {key!r}")
    state = session.scalar(_LOCK_STATE, {"id": exp.id})
    assert state is not None
    fresh = session.scalar(_FRESH, {"id": exp.id})
    assert fresh is not None
    return fresh, state
