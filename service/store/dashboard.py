"""Read side of the dashboard pages: experiment summaries and time series.

Time series are indexed by policy update (``policy_updates.seq``): decisions are counted per
``(policy_version, arm)`` and learned rewards summed per ``(update_seq, arm)`` in SQL, so a
page reads a few grouped rows per update, never the log row by row. At most ``max_points``
updates are drawn (evenly spaced, the last one always included); the cumulative sums use
every update.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.models import Decision, Experiment, PolicyUpdate, Reward
from service.schemas import StatsOut
from service.store import insights
from service.store.common import CHUNK, as_utc, load


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
    session: Session, status: str | None, only: Sequence[str] | None, limit: int = 200
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
        st = insights.experiment_stats(session, key)
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


@dataclass(frozen=True)
class PolicySeries:
    """Per drawn policy update ``t`` (columns: arms, in the experiment's order)."""

    arms: list[str]
    times: list[dt.datetime]
    versions: list[int]
    #: allocation after update t
    weights: list[list[float]]
    #: decisions taken up to and including policy version t
    decisions: list[list[int]]
    #: mean learned reward (reward-definition units) up to update t; None before any
    mean_reward: list[list[float | None]]


def policy_series(session: Session, key: str, max_points: int = 300) -> PolicySeries:
    """Weights, cumulative decisions and cumulative mean reward per arm over policy updates."""
    exp, _state = load(session, key)
    n = len(exp.arms)
    scale = float(max(exp.reward_definition.values()))
    updates = session.execute(
        select(PolicyUpdate.seq, PolicyUpdate.created_at)
        .where(PolicyUpdate.experiment_id == exp.id)
        .order_by(PolicyUpdate.seq)
    ).all()
    seqs = np.array([u[0] for u in updates], dtype=np.int64)
    index = {int(s): i for i, s in enumerate(seqs)}
    dec = np.zeros((len(seqs), n), dtype=np.int64)
    for version, arm, c in session.execute(
        select(Decision.policy_version, Decision.arm, func.count())
        .where(Decision.experiment_id == exp.id, ~Decision.fallback)
        .group_by(Decision.policy_version, Decision.arm)
    ):
        if int(version) in index:
            dec[index[int(version)], arm] += c
    obs = np.zeros((len(seqs), n), dtype=np.int64)
    sums = np.zeros((len(seqs), n), dtype=float)
    for upd, rarm, c, s in session.execute(
        select(Reward.update_seq, Reward.arm, func.count(), func.sum(Reward.normalized))
        .where(Reward.experiment_id == exp.id, Reward.learned, Reward.update_seq.is_not(None))
        .group_by(Reward.update_seq, Reward.arm)
    ):
        i = index.get(int(upd)) if upd is not None else None
        if i is not None and rarm is not None:
            obs[i, rarm] += c
            sums[i, rarm] += float(s or 0.0)
    cum_dec, cum_obs, cum_sum = dec.cumsum(0), obs.cumsum(0), sums.cumsum(0)
    picks = _evenly(len(seqs), max_points)
    weights = _allocations(session, exp.id, [int(seqs[i]) for i in picks])
    return PolicySeries(
        arms=list(exp.arms),
        times=[as_utc(updates[i][1]) for i in picks],
        versions=[int(seqs[i]) for i in picks],
        weights=[weights[int(seqs[i])] for i in picks],
        decisions=[[int(x) for x in cum_dec[i]] for i in picks],
        mean_reward=[
            [
                float(cum_sum[i, j] / cum_obs[i, j] * scale) if cum_obs[i, j] else None
                for j in range(n)
            ]
            for i in picks
        ],
    )


def _evenly(total: int, most: int) -> list[int]:
    """At most ``most`` indices out of ``range(total)``, evenly spaced, first and last kept."""
    if total <= most:
        return list(range(total))
    return [int(i) for i in np.unique(np.rint(np.linspace(0, total - 1, most)).astype(np.int64))]


def _allocations(session: Session, exp_id: int, seqs: list[int]) -> dict[int, list[float]]:
    out: dict[int, list[float]] = {}
    for j in range(0, len(seqs), CHUNK):
        for seq, alloc in session.execute(
            select(PolicyUpdate.seq, PolicyUpdate.allocation).where(
                PolicyUpdate.experiment_id == exp_id, PolicyUpdate.seq.in_(seqs[j : j + CHUNK])
            )
        ):
            out[int(seq)] = [float(x) for x in alloc]
    return out
