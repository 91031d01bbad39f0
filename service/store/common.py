"""Look-ups and conversions shared by the store modules."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from service.errors import NotFound, Unavailable
from service.models import Experiment, PolicyState

CHUNK = 500  # IN-list size for look-ups

#: Most seconds from a decision's read of its experiment (the policy version it draws from)
#: to the insert of its row. A decision that takes longer is refused with 503 and stores
#: nothing, so no decision of a version can be stored long after the next update: this is
#: what lets :mod:`.sealed_counts` treat a version (and a day) as final soon after.
DECISION_DEADLINE_S = 5.0


def check_deadline(read_at: float) -> None:
    """:class:`~service.errors.Unavailable` if more than :data:`DECISION_DEADLINE_S` passed
    since ``read_at`` (``time.monotonic()`` when the decision read its experiment)."""
    waited = time.monotonic() - read_at
    if waited > DECISION_DEADLINE_S:
        raise Unavailable(
            f"the decision took {waited:.1f} s from reading its policy to storing its row, "
            f"above the limit of {DECISION_DEADLINE_S:g} s; nothing was stored: retry it"
        )


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
