"""Typed rows that travel between the store modules, and their bulk writes.

A :class:`RewardRow` is one ``rewards`` row before it is inserted; an :class:`ArmDelta` is
what one transaction adds to an arm's ``arm_stats`` counters; a :class:`DecisionRef` is the
part of a logged decision that judging a reward needs.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import Connection, and_, bindparam, insert, text, update

from service.models import ArmStat, Reward


@dataclass(slots=True)
class RewardRow:
    """One ``rewards`` row to insert (column for column; ``id`` comes from the database)."""

    experiment_id: int
    idempotency_key: str
    request_hash: str
    decision_id: str
    arm: int | None
    kind: str
    value: float
    item: str | None
    status: str
    created_at: dt.datetime
    position: int | None = None
    late: bool = False
    orphan: bool = False
    learned: bool = False
    normalized: float | None = None
    update_seq: int | None = None
    update_pos: int | None = None
    duplicates: int = 0

    def params(self) -> dict[str, Any]:
        """The row as bind parameters, keyed by column name."""
        return {name: getattr(self, name) for name in REWARD_FIELDS}


REWARD_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(RewardRow))


@dataclass(slots=True)
class ArmDelta:
    """What one transaction adds to one arm's ``arm_stats`` row."""

    clicks: int = 0
    conversions: int = 0
    raw_sum: float = 0.0  # raw values of the learned rewards
    n_learned: int = 0  # observations given to the policy
    reward_sum: float = 0.0  # normalised
    reward_sq_sum: float = 0.0

    def observe(self, value: float, normalized: float) -> None:
        """Count one learned observation of raw ``value`` (``normalized`` for the policy)."""
        self.raw_sum += value
        self.n_learned += 1
        self.reward_sum += normalized
        self.reward_sq_sum += normalized * normalized


def arm_deltas() -> defaultdict[int, ArmDelta]:
    """An empty per-arm accumulator."""
    return defaultdict(ArmDelta)


@dataclass(frozen=True, slots=True)
class DecisionRef:
    """A logged decision, as judging a reward needs it."""

    arm: int
    created_at: dt.datetime
    fallback: bool
    items: list[Any] | None = None  # the list shown (service.serving.ServedItem as JSON)

    def slot_of(self, item_id: int | None, position: int | None) -> int | None:
        """The position of the shown item named by ``item_id`` and/or ``position``, or None
        when the decision did not show it (or showed no items)."""
        if not self.items:
            return None
        if item_id is not None:
            slot = next((i["position"] for i in self.items if i["item"] == item_id), None)
            if slot is None or (position is not None and position != slot):
                return None
            return int(slot)
        if position is not None and 0 <= position < len(self.items):
            return position
        return None


_PG_ARRAY_TYPES = {  # column -> PostgreSQL array type, for the unnest() bulk insert
    "experiment_id": "bigint[]",
    "idempotency_key": "text[]",
    "request_hash": "text[]",
    "decision_id": "text[]",
    "arm": "integer[]",
    "kind": "text[]",
    "value": "float8[]",
    "item": "text[]",
    "status": "text[]",
    "created_at": "timestamptz[]",
    "position": "integer[]",
    "late": "boolean[]",
    "orphan": "boolean[]",
    "learned": "boolean[]",
    "normalized": "float8[]",
    "update_seq": "bigint[]",
    "update_pos": "integer[]",
    "duplicates": "integer[]",
}
assert set(_PG_ARRAY_TYPES) == set(REWARD_FIELDS)
# Built from the constant mapping above only (no user input): column names and types.
_COLS = ", ".join(REWARD_FIELDS)
_ARRAYS = ", ".join(f"CAST(:{c} AS {_PG_ARRAY_TYPES[c]})" for c in REWARD_FIELDS)
_PG_INSERT_REWARDS = text(
    f"INSERT INTO rewards ({_COLS}) SELECT * FROM unnest({_ARRAYS}) "  # noqa: S608
    "RETURNING id, idempotency_key"
)


_REWARDS = Reward.__table__
_INSERT_REWARDS = insert(_REWARDS).returning(  # type: ignore[arg-type]
    _REWARDS.c.id, _REWARDS.c.idempotency_key
)


def insert_rewards(conn: Connection, rows: list[RewardRow]) -> dict[str, int]:
    """Bulk-insert reward rows; returns {idempotency key: id}.

    PostgreSQL: one ``INSERT ... SELECT FROM unnest(arrays)`` statement, one parameter per
    column whatever the batch size (a multi-row VALUES list costs the driver a lot of Python
    work per parameter). SQLite: executemany with RETURNING (batched multi-row INSERTs).
    Rows come back in any order, so they are matched by their (unique) key.
    """
    if not rows:
        return {}
    if conn.dialect.name == "postgresql":
        arrays = {c: [getattr(r, c) for r in rows] for c in REWARD_FIELDS}
        result = conn.execute(_PG_INSERT_REWARDS, arrays)
    else:
        result = conn.execute(_INSERT_REWARDS, [r.params() for r in rows])
    return {k: rid for rid, k in result}


def add_duplicates(conn: Connection, experiment_id: int, counts: dict[str, int]) -> None:
    """Add ``counts[key]`` to the ``duplicates`` counter of each stored reward ``key``."""
    if not counts:
        return
    table = Reward.__table__
    conn.execute(
        update(table)  # type: ignore[arg-type]
        .where(
            table.c.experiment_id == experiment_id,
            table.c.idempotency_key == bindparam("k"),
        )
        .values(duplicates=table.c.duplicates + bindparam("n")),
        [{"k": k, "n": n} for k, n in counts.items()],
    )


_ARM_STATS = ArmStat.__table__
_BUMP_ARM_STATS = (  # built once: every learning transaction runs it
    update(_ARM_STATS)  # type: ignore[arg-type]
    .where(and_(_ARM_STATS.c.experiment_id == bindparam("e"), _ARM_STATS.c.arm == bindparam("a")))
    .values(
        clicks=_ARM_STATS.c.clicks + bindparam("c"),
        conversions=_ARM_STATS.c.conversions + bindparam("v"),
        raw_sum=_ARM_STATS.c.raw_sum + bindparam("s"),
        n_learned=_ARM_STATS.c.n_learned + bindparam("n"),
        reward_sum=_ARM_STATS.c.reward_sum + bindparam("rs"),
        reward_sq_sum=_ARM_STATS.c.reward_sq_sum + bindparam("rq"),
    )
)


def bump_arm_stats(conn: Connection, experiment_id: int, deltas: dict[int, ArmDelta]) -> None:
    """Add each arm's delta to its ``arm_stats`` counters (one executemany)."""
    if not deltas:
        return
    conn.execute(
        _BUMP_ARM_STATS,
        [
            {
                "e": experiment_id,
                "a": arm,
                "c": d.clicks,
                "v": d.conversions,
                "s": d.raw_sum,
                "n": d.n_learned,
                "rs": d.reward_sum,
                "rq": d.reward_sq_sum,
            }
            for arm, d in sorted(deltas.items())
        ],
    )
