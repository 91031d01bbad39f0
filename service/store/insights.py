"""Read side: allocation, per-arm statistics and health of an experiment.

Nothing here writes; on SQLite these reads run in deferred (read) transactions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import bindparam, exists, func, select, text
from sqlalchemy.orm import Session

from service import models, stats
from service.background import Failure
from service.models import ArmStat, Decision, Experiment, PolicyState, PolicyUpdate, Reward
from service.schemas import (
    AllocationOut,
    ArmStats,
    HealthOut,
    PositionStats,
    SampleRatioTest,
    StatsOut,
)
from service.store.common import as_utc, load
from service.store.experiments import SCORED_FUSERS
from service.store.item_stats import ItemStats, item_stats
from service.store.learning import OBSERVATION
from service.store.sealed_counts import SealedCounts, VersionCounts

NOT_REWARDS = ("none", OBSERVATION)  # observation rows (kind none: zeros of earlier versions)
# The predicates of the partial indexes ix_rewards_reported and ix_rewards_retried, as
# literal SQL (a planner matches a partial index only on the same literal terms).
REPORTED = text(models.REPORTED)
RETRIED = text(models.RETRIED)
assert "kind NOT IN ({})".format(", ".join(f"'{k}'" for k in NOT_REWARDS)) == models.REPORTED


def allocation(session: Session, key: str) -> AllocationOut:
    """The probability each arm gets at the next decision."""
    exp, state = load(session, key)
    return AllocationOut(
        experiment=key,
        policy_version=state.version,
        allocation=dict(zip(exp.arms, state.allocation, strict=True)),
        updated_at=as_utc(state.updated_at),
    )


@dataclass(frozen=True)
class DecisionCounts:
    """Decisions per arm (fallback answers apart), and the counts per version behind the
    sample-ratio test (with the process's cache that holds their allocations)."""

    per_arm: np.ndarray
    fallback: int
    versions: VersionCounts
    source: SealedCounts


def decision_counts(
    session: Session, exp_id: int, n_arms: int, sealed: SealedCounts | None = None
) -> DecisionCounts:
    """One grouped read in the order of ``ix_decisions_experiment_version_arm`` (which holds
    every column it needs, so the table itself is not read); with ``sealed``, of the versions
    it does not hold final counts of yet (:mod:`.sealed_counts`)."""
    source = sealed or SealedCounts()
    got = source.versions(session, exp_id, n_arms)
    return DecisionCounts(got.per_arm, got.fallback, got, source)


def experiment_stats(
    session: Session,
    key: str,
    made: DecisionCounts | None = None,
    sealed: SealedCounts | None = None,
) -> StatsOut:
    """Per arm: decisions, clicks, conversions, mean reward with its 95% interval,
    probability of being best, expected loss, current weight and item counts; per
    position: the click rate (:mod:`.item_stats`).

    ``made``: the experiment's :func:`decision_counts` when the caller already has them;
    ``sealed``: the process's final counts of the past (:mod:`.sealed_counts`)."""
    exp, state = load(session, key)
    n = len(exp.arms)
    counts = (made or decision_counts(session, exp.id, n, sealed)).per_arm
    rows = {
        s.arm: s for s in session.scalars(select(ArmStat).where(ArmStat.experiment_id == exp.id))
    }
    empty = ArmStat(clicks=0, conversions=0, n_learned=0, reward_sum=0.0, reward_sq_sum=0.0)
    per_arm = [rows.get(i, empty) for i in range(n)]
    scale = max(exp.reward_definition.values())
    obs = np.array([s.n_learned for s in per_arm], dtype=float)
    sums = np.array([s.reward_sum for s in per_arm], dtype=float)
    sq = np.array([s.reward_sq_sum for s in per_arm], dtype=float)
    summary = stats.arm_summary(obs, sums, sq, scale)
    items = item_stats(session, exp.id, n) if exp.recommenders else ItemStats.empty(n)
    share = items.slot_share
    return StatsOut(
        experiment=key,
        policy=exp.policy,
        policy_version=state.version,
        status=exp.status,
        arms=[
            ArmStats(
                arm=name,
                decisions=int(counts[i]),
                clicks=per_arm[i].clicks,
                conversions=per_arm[i].conversions,
                observations=int(obs[i]),
                mean_reward=summary.mean[i],
                ci95_low=summary.low[i],
                ci95_high=summary.high[i],
                prob_best=summary.prob_best[i],
                expected_loss=summary.expected_loss[i],
                weight=float(state.allocation[i]),
                retired=i in (exp.retired or ()),
                items_shown=int(items.shown[i]),
                item_clicks=int(items.clicks[i]),
                item_conversions=int(items.conversions[i]),
                slot_share=float(share[i]),
            )
            for i, name in enumerate(exp.arms)
        ],
        positions=[
            PositionStats(position=j, shown=int(s), clicked=int(c), click_rate=float(r))
            for j, (s, c, r) in enumerate(
                zip(items.position_shown, items.position_clicked, items.click_rate, strict=True)
            )
        ],
    )


def _srm(session: Session, exp: Experiment, counts: DecisionCounts) -> stats.SRMResult:
    """Sample-ratio test of the non-fallback decisions against their logged allocations.

    A deterministic fuser (weighted-score, weighted-rrf) draws nothing: its decisions' arm
    is the top item's largest credit share, which the allocation does not predict, so there
    is nothing to test (p = 1, 0 degrees of freedom)."""
    n = len(exp.arms)
    if exp.mode == "fuse" and exp.fuser in SCORED_FUSERS:
        observed = counts.per_arm.astype(float)
        return stats.SRMResult(observed, observed.copy(), 0.0, 0, 1.0)
    return stats.srm_test(counts.source.srm(session, exp.id, counts.versions, n))


# Built once (see .common): every /health runs them.
_REWARDS_BY_STATUS = (
    select(Reward.status, func.count())
    .where(Reward.experiment_id == bindparam("e"), REPORTED)
    .group_by(Reward.status)
)
_DUPLICATES = select(func.coalesce(func.sum(Reward.duplicates), 0)).where(
    Reward.experiment_id == bindparam("e"), RETRIED
)
_LAST_UPDATE = select(func.max(PolicyUpdate.created_at)).where(
    PolicyUpdate.experiment_id == bindparam("e")
)
_PENDING = select(func.count()).where(
    Decision.experiment_id == bindparam("e"),
    Decision.created_at >= bindparam("low"),
    ~Decision.fallback,
    ~exists().where(
        Reward.decision_id == Decision.id,
        Reward.experiment_id == bindparam("e"),
        Reward.learned,
    ),
)


def _pending(session: Session, exp: Experiment, state: PolicyState) -> int:
    """Decisions after the settling watermark still waiting for a learned reward."""
    if exp.reward_window_s is None:
        return 0
    low = state.settled_until or exp.created_at
    return int(session.connection().execute(_PENDING, {"e": exp.id, "low": low}).scalar() or 0)


def health(
    session: Session,
    key: str,
    failure: Failure | None = None,
    made: DecisionCounts | None = None,
    sealed: SealedCounts | None = None,
) -> HealthOut:
    """Sample-ratio test, pending / late / orphan / duplicate / ignored reward counts and
    the last policy update of an experiment; ``failure``: its last background failure;
    ``made``: as for :func:`experiment_stats`."""
    exp, state = load(session, key)
    made = made or decision_counts(session, exp.id, len(exp.arms), sealed)
    srm = _srm(session, exp, made)
    decisions, fallback = int(made.per_arm.sum()), made.fallback
    conn = session.connection()  # Core: these return plain values
    counts = dict(conn.execute(_REWARDS_BY_STATUS, {"e": exp.id}).all())
    dups = conn.execute(_DUPLICATES, {"e": exp.id}).scalar()
    last = conn.execute(_LAST_UPDATE, {"e": exp.id}).scalar()
    return HealthOut(
        experiment=key,
        status=exp.status,
        decisions=decisions,
        fallback_decisions=fallback,
        srm=SampleRatioTest(
            observed=dict(zip(exp.arms, (int(x) for x in srm.observed), strict=True)),
            expected=dict(zip(exp.arms, (float(x) for x in srm.expected), strict=True)),
            statistic=srm.statistic,
            dof=srm.dof,
            p_value=srm.p_value,
            mismatch=srm.p_value < 1e-3,
        ),
        pending_decisions=_pending(session, exp, state),
        rewards=int(sum(counts.values())),
        late_rewards=int(counts.get("late", 0)),
        orphan_rewards=int(counts.get("orphan", 0) + counts.get("unshown", 0)),
        duplicate_rewards=int(dups or 0),
        ignored_rewards=int(counts.get("ignored", 0)),
        policy_version=state.version,
        last_policy_update=as_utc(last) if last else None,
        background_error=failure.message if failure else None,
        background_error_at=failure.at if failure else None,
    )


def stats_and_health(
    session: Session, key: str, failure: Failure | None = None, sealed: SealedCounts | None = None
) -> tuple[StatsOut, HealthOut]:
    """:func:`experiment_stats` and :func:`health` from one read of the decision counts
    (the costly part of both on a large log), as the dashboard's experiment page needs."""
    exp, _ = load(session, key)
    made = decision_counts(session, exp.id, len(exp.arms), sealed)
    return experiment_stats(session, key, made), health(session, key, failure, made)
