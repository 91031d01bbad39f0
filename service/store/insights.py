"""Read side: allocation, per-arm statistics and health of an experiment.

Nothing here writes; on SQLite these reads run in deferred (read) transactions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from service import stats
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
from service.store.common import CHUNK, as_utc, load
from service.store.experiments import SCORED_FUSERS
from service.store.item_stats import item_stats
from service.store.learning import OBSERVATION

NOT_REWARDS = ("none", OBSERVATION)  # observation rows (kind none: zeros of earlier versions)


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
    """Decisions per arm (fallback answers apart)."""

    per_arm: np.ndarray
    fallback: int


def decision_counts(session: Session, exp_id: int, n_arms: int) -> DecisionCounts:
    counts = np.zeros(n_arms, dtype=np.int64)
    fallback = 0
    for arm, fb, n in session.execute(
        select(Decision.arm, Decision.fallback, func.count())
        .where(Decision.experiment_id == exp_id)
        .group_by(Decision.arm, Decision.fallback)
    ):
        if fb:
            fallback += n
        else:
            counts[arm] += n
    return DecisionCounts(counts, fallback)


def experiment_stats(session: Session, key: str) -> StatsOut:
    """Per arm: decisions, clicks, conversions, mean reward with its 95% interval,
    probability of being best, expected loss, current weight and item counts; per
    position: the click rate (:mod:`.item_stats`)."""
    exp, state = load(session, key)
    n = len(exp.arms)
    counts = decision_counts(session, exp.id, n).per_arm
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
    items = item_stats(session, exp.id, n)
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


def _srm(session: Session, exp: Experiment) -> tuple[stats.SRMResult, int]:
    """Sample-ratio test of the non-fallback decisions against their logged allocations.

    A deterministic fuser (weighted-score, weighted-rrf) draws nothing: its decisions' arm
    is the top item's largest credit share, which the allocation does not predict, so there
    is nothing to test (p = 1, 0 degrees of freedom)."""
    n = len(exp.arms)
    by_version: dict[int, np.ndarray] = {}
    for version, arm, c in session.execute(
        select(Decision.policy_version, Decision.arm, func.count())
        .where(Decision.experiment_id == exp.id, ~Decision.fallback)
        .group_by(Decision.policy_version, Decision.arm)
    ):
        by_version.setdefault(version, np.zeros(n, dtype=np.int64))[arm] += c
    probs: dict[int, list[float]] = {}
    versions = list(by_version)
    for j in range(0, len(versions), CHUNK):
        for seq, alloc in session.execute(
            select(PolicyUpdate.seq, PolicyUpdate.allocation).where(
                PolicyUpdate.experiment_id == exp.id, PolicyUpdate.seq.in_(versions[j : j + CHUNK])
            )
        ):
            probs[seq] = alloc
    if exp.mode == "fuse" and exp.fuser in SCORED_FUSERS:
        observed = sum(by_version.values(), np.zeros(n, dtype=np.int64)).astype(float)
        srm = stats.SRMResult(observed, observed.copy(), 0.0, 0, 1.0)
    else:
        srm = stats.sample_ratio_test(
            [(by_version[v], _padded(probs[v], n)) for v in versions if v in probs], n
        )
    return srm, int(sum(int(c.sum()) for c in by_version.values()))


def _padded(allocation: list[float], n: int) -> np.ndarray:
    """A version's allocation over all ``n`` arms (arms added after it had 0)."""
    out = np.zeros(n)
    out[: len(allocation)] = allocation
    return out


def _pending(session: Session, exp: Experiment, state: PolicyState) -> int:
    """Decisions after the settling watermark still waiting for a learned reward."""
    if exp.reward_window_s is None:
        return 0
    low = state.settled_until or exp.created_at
    rewarded = exists().where(
        Reward.decision_id == Decision.id, Reward.experiment_id == exp.id, Reward.learned
    )
    return int(
        session.scalar(
            select(func.count()).where(
                Decision.experiment_id == exp.id,
                Decision.created_at >= low,
                ~Decision.fallback,
                ~rewarded,
            )
        )
        or 0
    )


def health(session: Session, key: str, failure: Failure | None = None) -> HealthOut:
    """Sample-ratio test, pending / late / orphan / duplicate / ignored reward counts and
    the last policy update of an experiment; ``failure``: its last background failure."""
    exp, state = load(session, key)
    srm, decisions = _srm(session, exp)
    fallback = decision_counts(session, exp.id, len(exp.arms)).fallback
    counts = dict(
        session.execute(
            select(Reward.status, func.count())
            .where(Reward.experiment_id == exp.id, Reward.kind.not_in(NOT_REWARDS))
            .group_by(Reward.status)
        ).all()
    )
    dups = session.scalar(
        select(func.coalesce(func.sum(Reward.duplicates), 0)).where(Reward.experiment_id == exp.id)
    )
    last = session.scalar(
        select(func.max(PolicyUpdate.created_at)).where(PolicyUpdate.experiment_id == exp.id)
    )
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
