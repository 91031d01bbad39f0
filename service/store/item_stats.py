"""Item-level statistics of decisions with items: per arm and per position.

Everything is aggregated by the database (``GROUP BY`` over the shown items and over the
rewards), never row by row in Python:

* **shown**: the items of ``decisions.items`` (every decision that answered with items,
  fallback answers included), unnested with ``json_each`` (SQLite) or
  ``json_array_elements`` (PostgreSQL) and counted per (source arm, position);
* **credited clicks / conversions**: rewards that name a shown item (their ``position`` is
  set; clicks on items not shown have none) with a value above 0, per credited arm (the
  arm that placed the item) and per position;
* **slot share** of an arm: its shown items over all shown items;
* **click rate** of a position: the decisions with at least one credited click there, over
  the decisions that showed something there (the position curve; without position
  correction it mixes examination and the items' attraction).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import distinct, func, select, text
from sqlalchemy.orm import Session

from service.models import Reward

# (arm, position, count) of the shown items of one experiment's decisions; the aliases differ
# from the decisions' own columns (SQLite resolves GROUP BY names to columns first)
_SHOWN = {
    "sqlite": text(
        "SELECT CAST(json_extract(j.value, '$.arm') AS INTEGER) AS slot_arm, "
        "CAST(json_extract(j.value, '$.position') AS INTEGER) AS slot_pos, count(*) "
        "FROM decisions AS d, json_each(d.items) AS j "
        "WHERE d.experiment_id = :e AND json_type(d.items) = 'array' "
        "GROUP BY slot_arm, slot_pos"
    ),
    "postgresql": text(
        "SELECT CAST(j ->> 'arm' AS INTEGER) AS slot_arm, "
        "CAST(j ->> 'position' AS INTEGER) AS slot_pos, count(*) "
        "FROM decisions AS d, json_array_elements(d.items) AS j "
        "WHERE d.experiment_id = :e AND json_typeof(d.items) = 'array' "
        "GROUP BY slot_arm, slot_pos"
    ),
}


@dataclass(frozen=True)
class ItemStats:
    """Per arm (``(A,)``) and per position (``(K,)``) item counts of one experiment."""

    shown: np.ndarray  # items shown, per arm
    clicks: np.ndarray  # credited clicks, per arm
    conversions: np.ndarray  # credited conversions, per arm
    position_shown: np.ndarray  # decisions that showed an item at each position
    position_clicked: np.ndarray  # decisions with a credited click at each position

    @classmethod
    def empty(cls, n_arms: int) -> ItemStats:
        """No item shown (an experiment whose arms have no recommender never shows one)."""
        zero = np.zeros(0, dtype=np.int64)
        return cls(
            np.zeros(n_arms, dtype=np.int64),
            np.zeros(n_arms, dtype=np.int64),
            np.zeros(n_arms, dtype=np.int64),
            zero,
            zero.copy(),
        )

    @property
    def slot_share(self) -> np.ndarray:
        total = self.shown.sum()
        return self.shown / total if total else np.zeros_like(self.shown, dtype=float)

    @property
    def click_rate(self) -> np.ndarray:
        shown = self.position_shown.astype(float)
        return np.divide(self.position_clicked, shown, out=np.zeros_like(shown), where=shown > 0)


def item_stats(session: Session, experiment_id: int, n_arms: int) -> ItemStats:
    """The item statistics of experiment ``experiment_id`` (see the module docstring)."""
    shown_rows = session.execute(
        _SHOWN[session.get_bind().dialect.name], {"e": experiment_id}
    ).all()
    credited = Reward.position.is_not(None), Reward.arm.is_not(None), Reward.value > 0
    per_arm = session.execute(
        select(Reward.arm, Reward.kind, func.count())
        .where(Reward.experiment_id == experiment_id, *credited)
        .where(Reward.kind.in_(("click", "conversion")))
        .group_by(Reward.arm, Reward.kind)
    ).all()
    per_pos = session.execute(
        select(Reward.position, func.count(distinct(Reward.decision_id)))
        .where(Reward.experiment_id == experiment_id, Reward.kind == "click", *credited)
        .group_by(Reward.position)
    ).all()
    positions = [(int(p), int(c)) for p, c in per_pos if p is not None]  # (filtered above)
    k = max([int(p) + 1 for _, p, _ in shown_rows] + [p + 1 for p, _ in positions] + [0])
    shown = np.zeros(n_arms, dtype=np.int64)
    pos_shown = np.zeros(k, dtype=np.int64)
    for arm, pos, c in shown_rows:
        shown[int(arm)] += c
        pos_shown[int(pos)] += c
    clicks = np.zeros(n_arms, dtype=np.int64)
    conversions = np.zeros(n_arms, dtype=np.int64)
    for arm, kind, c in per_arm:
        if arm is None:  # (filtered above)
            continue
        (clicks if kind == "click" else conversions)[int(arm)] += c
    pos_clicked = np.zeros(k, dtype=np.int64)
    for pos, c in positions:
        pos_clicked[pos] = c
    return ItemStats(shown, clicks, conversions, pos_shown, pos_clicked)
