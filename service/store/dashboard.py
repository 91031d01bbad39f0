"""Read side of the dashboard pages: experiment summaries and time series.

Time series are indexed by policy update (``policy_updates.seq``) and read from the
pre-aggregated ``arm_series`` rows (:mod:`service.store.series`): at most ``MAX_POINTS``
updates are selected by ``seq`` in SQL, so a page reads a bounded number of rows whatever
the size of the log. Means, intervals and probabilities of being best are those of
:mod:`service.stats`, the functions behind ``/stats``.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service import stats
from service.models import ArmSeries, Decision, Experiment, PolicyUpdate
from service.schemas import StatsOut
from service.store import insights, series
from service.store.common import CHUNK, as_utc, load
from service.store.sealed_counts import SealedCounts


@dataclass(frozen=True)
class ExperimentRow:
    """One line of the experiments list."""

    key: str
    name: str
    status: str
    policy: str
    mode: str
    created_at: dt.datetime
    decisions: int
    clicks: int
    leader: str | None
    leader_prob_best: float | None


def experiment_rows(
    session: Session,
    status: str | None,
    only: Sequence[str] | None,
    limit: int = 200,
    sealed: SealedCounts | None = None,
) -> list[ExperimentRow]:
    """Experiments (newest first) with their traffic and current leader.

    The leader is the arm with the highest probability of being best (from
    :func:`service.store.insights.experiment_stats`); None before any observation.
    """
    cond = [Experiment.status == status] if status else []
    if only is not None:
        cond.append(Experiment.key.in_(list(only)))
    keys = session.scalars(
        select(Experiment.key).where(*cond).order_by(Experiment.id.desc()).limit(limit)
    ).all()
    rows = []
    for key in keys:
        exp = session.scalar(select(Experiment).where(Experiment.key == key))
        assert exp is not None
        st = insights.experiment_stats(session, key, sealed=sealed)
        leader, prob = leader_of(st)
        rows.append(
            ExperimentRow(
                key=key,
                name=exp.name,
                status=exp.status,
                policy=exp.policy,
                mode=exp.mode,
                created_at=as_utc(exp.created_at),
                decisions=sum(a.decisions for a in st.arms),
                clicks=sum(a.clicks for a in st.arms),
                leader=leader,
                leader_prob_best=prob,
            )
        )
    return rows


def leader_of(st: StatsOut) -> tuple[str | None, float | None]:
    """The arm most likely best and that probability; (None, None) with no observation."""
    if not any(a.observations for a in st.arms):
        return None, None
    best = max(st.arms, key=lambda a: a.prob_best)
    return best.arm, best.prob_best


#: the most points a time series is drawn with
MAX_POINTS = 500


@dataclass(frozen=True)
class TimeSeries:
    """The experiment page's time series (columns: arms, in the experiment's order).

    ``times``, ``versions`` and the per-arm lists below them are per drawn policy update;
    ``best_*`` per drawn update that stored the probability of being best, plus the current
    one (the stats' numbers); ``days`` / ``daily_decisions`` per UTC day with decisions.
    """

    arms: list[str]
    times: list[dt.datetime]
    versions: list[int]
    #: allocation after update t
    weights: list[list[float]]
    #: observations learned up to update t
    observations: list[list[int]]
    #: mean learned reward (reward-definition units) and its 95% interval up to update t
    mean: list[list[float | None]]
    low: list[list[float | None]]
    high: list[list[float | None]]
    best_times: list[dt.datetime]
    best_versions: list[int]
    prob_best: list[list[float]]
    days: list[str]
    daily_decisions: list[int]


def time_series(
    session: Session,
    key: str,
    current: StatsOut,
    max_points: int = MAX_POINTS,
    sealed: SealedCounts | None = None,
) -> TimeSeries:
    """The time series of experiment ``key``, read from ``arm_series`` and ``policy_updates``.

    At most ``max_points`` updates are read (evenly spaced over ``0..version``, the last one
    always included): the rows are selected by ``seq`` in SQL, so the cost does not grow
    with the log. ``current`` (the experiment's :func:`insights.experiment_stats`) is the
    last point of the probability of being best, so the chart ends at the stats' numbers.
    """
    exp, state = load(session, key)
    n = len(exp.arms)
    scale = float(max(exp.reward_definition.values()))
    picks = _evenly(state.version + 1, max_points)
    updates = _updates(session, exp.id, picks)
    seqs = [s for s in picks if s in updates]
    cum, learned = _cumulative(session, exp.id, seqs, n)
    # arms added or retired over HTTP are updates that learned nothing: no rows to draw
    keep = [i for i, s in enumerate(seqs) if s == 0 or s in learned]
    seqs, cum = [seqs[i] for i in keep], cum[keep]
    mi = stats.mean_intervals(cum[..., 0], cum[..., 1], cum[..., 2], scale)
    kept = series.prob_best_seqs(state.version)
    kept = [kept[i] for i in _evenly(len(kept), max_points - 1)]
    best = _prob_best(session, exp.id, kept, n)
    best_seqs = [s for s in kept if s in best and s != state.version]
    best_at = _updates(session, exp.id, best_seqs)
    days, daily = _daily(session, exp.id, sealed)
    return TimeSeries(
        arms=list(exp.arms),
        times=[updates[s][0] for s in seqs],
        versions=seqs,
        weights=[_padded(updates[s][1], n) for s in seqs],
        observations=[[int(x) for x in row] for row in cum[..., 0]],
        mean=_listed(mi.mean),
        low=_listed(mi.low),
        high=_listed(mi.high),
        best_times=[best_at[s][0] for s in best_seqs] + [updates[state.version][0]],
        best_versions=[*best_seqs, state.version],
        prob_best=[best[s] for s in best_seqs] + [[a.prob_best for a in current.arms]],
        days=days,
        daily_decisions=daily,
    )


def _listed(a: np.ndarray) -> list[list[float | None]]:
    return [[None if math.isnan(x) else x for x in row] for row in a.tolist()]


def _evenly(total: int, most: int) -> list[int]:
    """At most ``most`` indices out of ``range(total)``, evenly spaced, first and last kept."""
    if total <= most:
        return list(range(total))
    return [int(i) for i in np.unique(np.rint(np.linspace(0, total - 1, most)).astype(np.int64))]


def _updates(
    session: Session, exp_id: int, seqs: list[int]
) -> dict[int, tuple[dt.datetime, list[float]]]:
    """``seq -> (time, allocation after it)`` for the policy updates ``seqs``."""
    out: dict[int, tuple[dt.datetime, list[float]]] = {}
    for j in range(0, len(seqs), CHUNK):
        for seq, at, alloc in session.execute(
            select(PolicyUpdate.seq, PolicyUpdate.created_at, PolicyUpdate.allocation).where(
                PolicyUpdate.experiment_id == exp_id, PolicyUpdate.seq.in_(seqs[j : j + CHUNK])
            )
        ):
            out[int(seq)] = (as_utc(at), [float(x) for x in alloc])
    return out


def _padded(allocation: list[float], n: int) -> list[float]:
    """An update's allocation over all ``n`` arms (arms added after it had 0)."""
    return allocation + [0.0] * (n - len(allocation))


def _cumulative(
    session: Session, exp_id: int, seqs: list[int], n: int
) -> tuple[np.ndarray, set[int]]:
    """``(len(seqs), arms, 3)``: observations, reward sum and sum of squares after each
    update (zeros before any learning: update 0), and the updates that have rows."""
    out = np.zeros((len(seqs), n, 3))
    found: set[int] = set()
    row = {s: i for i, s in enumerate(seqs)}
    for j in range(0, len(seqs), CHUNK):
        got = session.execute(
            select(
                ArmSeries.seq,
                ArmSeries.arm,
                ArmSeries.n_learned,
                ArmSeries.reward_sum,
                ArmSeries.reward_sq_sum,
            ).where(ArmSeries.experiment_id == exp_id, ArmSeries.seq.in_(seqs[j : j + CHUNK]))
        ).all()
        if got:
            a = np.array([tuple(r) for r in got], dtype=float)
            at = np.array([row[int(x)] for x in a[:, 0]])
            out[at, a[:, 1].astype(np.int64)] = a[:, 2:]
            found.update(int(x) for x in a[:, 0])
    return out, found


def _prob_best(session: Session, exp_id: int, seqs: list[int], n: int) -> dict[int, list[float]]:
    """``seq -> probability of being best per arm`` where ``arm_series`` stored it."""
    out: dict[int, list[float]] = {}
    for j in range(0, len(seqs), CHUNK):
        for seq, arm, p in session.execute(
            select(ArmSeries.seq, ArmSeries.arm, ArmSeries.prob_best).where(
                ArmSeries.experiment_id == exp_id,
                ArmSeries.seq.in_(seqs[j : j + CHUNK]),
                ArmSeries.prob_best.is_not(None),
            )
        ):
            if p is not None:  # (the filter above: never None)
                out.setdefault(int(seq), [0.0] * n)[arm] = float(p)
    return out


def _daily(
    session: Session, exp_id: int, sealed: SealedCounts | None = None
) -> tuple[list[str], list[int]]:
    """Decisions per UTC day (fallback answers included), the last ``MAX_POINTS`` days
    with decisions (:meth:`SealedCounts.days`: complete days are counted once per process).
    """
    mine = Decision.experiment_id == exp_id  # one aggregate per query: an index probe each
    first = session.scalar(select(func.min(Decision.created_at)).where(mine))
    last = session.scalar(select(func.max(Decision.created_at)).where(mine))
    if first is None or last is None:
        return [], []
    end = as_utc(last).date()
    start = max(as_utc(first).date(), end - dt.timedelta(days=MAX_POINTS - 1))
    per_day = (sealed or SealedCounts()).days(session, exp_id, start, end)
    days = [(start + dt.timedelta(days=i)).isoformat() for i, c in enumerate(per_day) if c]
    return days, [c for c in per_day if c]
