"""Panels of the experiment page beyond the leaderboard: the decision panel and, for ``fuse``
experiments, the per-slot view.

Decision panel (:func:`decision_panel`), from the stored per-arm aggregates (``arm_stats``,
the numbers behind ``/stats``):

* value remaining: :func:`bandit.inference.value_remaining` at 95% on the posteriors
  ``Beta(1 + sum_k, 1 + n_k - sum_k)`` of :func:`service.stats.arm_summary`, against the
  champion, the arm with the highest probability of being best in ``/stats``;
* reward gained or lost against an equal split of the same observations:
  :func:`bandit.inference.gain_over_equal_split` (plug-in estimator, counts held fixed).

Slots panel (:func:`slot_panel`), in SQL: the lists each decision answered
(``decisions.items``, one JSON object per shown slot with its ``position`` and ``arm``) are
expanded with ``json_each`` (SQLite) or ``json_array_elements`` (PostgreSQL) and counted per
(position, arm); the clicks credited to a slot are the ``rewards`` rows with that
``position`` (kind ``click``, value above 0, not orphaned: the rows ``/stats`` counts as
clicks, credited to the arm that placed the item).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import Integer, case, cast, func, literal_column, select, true
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import FromClause

from bandit.inference import SplitComparison, gain_over_equal_split, value_remaining
from service.models import ArmStat, Decision, Experiment, Reward
from service.schemas import StatsOut
from service.store.common import load
from service.web_counterfactual import Counterfactual, CounterfactualCache

#: Quantile of the value remaining shown on the page.
VALUE_LEVEL = 0.95
#: Below this fraction of the champion's value, the page says another arm is unlikely to
#: beat it by much (Google Analytics' content experiments and GrowthBook use 1%).
VALUE_STOP = 0.01


@dataclass(frozen=True)
class DecisionPanel:
    """What the decision panel shows; ``None`` fields say why in ``notes``."""

    champion: str | None
    #: value remaining at ``VALUE_LEVEL`` in reward-definition units, and as a fraction
    value_abs: float | None
    value_rel: float | None
    #: reward gained (negative: lost) against an equal split, in reward-definition units
    split: SplitComparison | None
    split_low: float | None
    split_high: float | None
    observations: int
    notes: list[str]
    level: float = VALUE_LEVEL
    stop_at: float = VALUE_STOP


def _aggregates(session: Session, exp_id: int, n_arms: int) -> np.ndarray:
    """``(3, n_arms)``: observations, sum and sum of squares of the normalised rewards."""
    out = np.zeros((3, n_arms))
    for arm, n, s, sq in session.execute(
        select(ArmStat.arm, ArmStat.n_learned, ArmStat.reward_sum, ArmStat.reward_sq_sum).where(
            ArmStat.experiment_id == exp_id
        )
    ):
        if 0 <= arm < n_arms:
            out[:, arm] = (n, s, sq)
    return out


def decision_panel(session: Session, exp: Experiment, stats: StatsOut) -> DecisionPanel:
    """Value remaining and gain over an equal split, from the stored aggregates."""
    scale = float(max(exp.reward_definition.values()))
    n, sums, sq = _aggregates(session, exp.id, len(exp.arms))
    notes: list[str] = []
    total = int(n.sum())
    if total == 0:
        return DecisionPanel(None, None, None, None, None, None, 0, ["No observation yet."])
    champion = max(range(len(stats.arms)), key=lambda i: stats.arms[i].prob_best)
    a = 1.0 + np.clip(sums, 0, None)
    b = 1.0 + np.clip(n - sums, 0, None)
    vr = value_remaining(a, b, VALUE_LEVEL, champion=champion)
    split = low = high = None
    if len(exp.arms) < 2:
        notes.append("One arm: there is no split to compare with.")
    elif np.any(n < 2):
        notes.append("The comparison with an equal split needs two observations per arm.")
    else:
        split = gain_over_equal_split(n, sums * scale, sq * scale * scale)
        low, high = split.interval()
    return DecisionPanel(
        champion=stats.arms[champion].arm,
        value_abs=vr.absolute * scale,
        value_rel=vr.relative,
        split=split,
        split_low=low,
        split_high=high,
        observations=total,
        notes=notes,
    )


@dataclass(frozen=True)
class SlotRow:
    """One slot position of a fused experiment."""

    position: int
    impressions: int
    #: per arm (experiment order): items it placed at this position, their share, clicks
    placed: list[int]
    share: list[float]
    clicks: list[int]
    #: distinct decisions with a click at this position, over its impressions
    click_rate: float | None


@dataclass(frozen=True)
class SlotPanel:
    arms: list[str]
    rows: list[SlotRow]


def _expanded(session: Session) -> tuple[ColumnElement[int], ColumnElement[int], FromClause]:
    """(position, arm, the table of shown items) for this session's dialect.

    Decisions without a list (``items`` SQL NULL or JSON ``null``) expand to no row: the
    array function reads ``[]`` for them (PostgreSQL's raises on a scalar).
    """
    if session.get_bind().dialect.name == "postgresql":
        lists = case(
            (func.json_typeof(Decision.items) == "array", Decision.items),
            else_=literal_column("'[]'::json"),
        )
        el = func.json_array_elements(lists).table_valued("value")
        return (
            cast(el.c.value.op("->>")("position"), Integer),
            cast(el.c.value.op("->>")("arm"), Integer),
            el,
        )
    lists = case((func.json_type(Decision.items) == "array", Decision.items), else_="[]")
    el = func.json_each(lists).table_valued("value")
    return (
        cast(func.json_extract(el.c.value, "$.position"), Integer),
        cast(func.json_extract(el.c.value, "$.arm"), Integer),
        el,
    )


def slot_panel(session: Session, exp: Experiment) -> SlotPanel:
    """Per slot position: each arm's share of the items shown and its credited clicks, and
    the click rate of the position (see the module doc for the SQL)."""
    k = len(exp.arms)
    position, arm, source = _expanded(session)
    placed: dict[int, np.ndarray] = {}
    query = (
        select(position, arm, func.count())
        .select_from(Decision)
        .join(source, true())
        .where(Decision.experiment_id == exp.id, Decision.fallback.is_(False))
        .group_by(position, arm)
    )
    for pos, a, c in session.execute(query):
        if pos is not None and a is not None and 0 <= a < k:
            placed.setdefault(int(pos), np.zeros(k, dtype=np.int64))[a] += c
    clicks: dict[int, np.ndarray] = {}
    clicked: dict[int, int] = {}
    credited = (
        Reward.experiment_id == exp.id,
        Reward.kind == "click",
        Reward.value > 0,
        Reward.orphan.is_(False),
        Reward.position.is_not(None),
    )
    for at, by, c in session.execute(
        select(Reward.position, Reward.arm, func.count())
        .where(*credited)
        .group_by(Reward.position, Reward.arm)
    ):
        if at is not None and by is not None and 0 <= by < k:
            clicks.setdefault(int(at), np.zeros(k, dtype=np.int64))[by] += c
    for at, c in session.execute(
        select(Reward.position, func.count(func.distinct(Reward.decision_id)))
        .where(*credited)
        .group_by(Reward.position)
    ):
        if at is not None:
            clicked[int(at)] = int(c)
    rows = []
    for pos in sorted(set(placed) | set(clicks)):
        shown = placed.get(pos, np.zeros(k, dtype=np.int64))
        total = int(shown.sum())
        rows.append(
            SlotRow(
                position=pos,
                impressions=total,
                placed=[int(x) for x in shown],
                share=[float(x) / total if total else 0.0 for x in shown],
                clicks=[int(x) for x in clicks.get(pos, np.zeros(k, dtype=np.int64))],
                click_rate=clicked.get(pos, 0) / total if total else None,
            )
        )
    return SlotPanel(list(exp.arms), rows)


@dataclass(frozen=True)
class Panels:
    """Everything the panels partial (``panels.html``) reads."""

    decision: DecisionPanel
    slots: SlotPanel | None  # fuse experiments only
    counterfactual: Counterfactual | None  # None: the first evaluation is under way


def experiment_panels(
    session: Session, key: str, stats: StatsOut, cache: CounterfactualCache
) -> Panels:
    """The panels of experiment ``key`` (``stats``: its ``/stats`` answer, read alongside)."""
    exp, state = load(session, key)
    return Panels(
        decision=decision_panel(session, exp, stats),
        slots=slot_panel(session, exp) if exp.mode == "fuse" else None,
        counterfactual=cache.get(session, exp, state),
    )
