"""Audit: rebuild a policy from the stored log and compare it with the live one."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from bandit import Policy
from service import policies
from service.models import Decision, PolicyState, Reward, utcnow
from service.store import series
from service.store.common import canonical, jsonable, load, lock


@dataclass
class RebuildResult:
    """A rebuilt policy state next to the live one."""

    experiment: str
    updates: int  # update_batch calls replayed
    observations: int
    version: int  # the live policy version
    state: dict[str, Any]  # rebuilt
    live_state: dict[str, Any]
    allocation: list[float]  # rebuilt
    #: ``arm_series`` rows that differ between the log's and the stored (missing ones count)
    series_differences: int = 0

    @property
    def equal(self) -> bool:
        """True when the rebuilt state is the live one, after as many updates as versions,
        and the stored ``arm_series`` rows are those the log gives."""
        same = canonical(self.state) == canonical(self.live_state)
        return same and self.updates == self.version and self.series_differences == 0


@dataclass(frozen=True, slots=True)
class Observation:
    """One learned observation of the log: its update, arm and what the policy saw."""

    update_seq: int | None  # always set on a learned reward
    arm: int
    reward: float


def observations(session: Session, experiment_id: int, scale: float) -> Iterable[Observation]:
    """The learned observations of an experiment in the order the live learners applied them.

    Each learned row is one decision's observation (see :mod:`.learning`), or one shown slot's
    for a fused decision: its arm is the row's (the slot's source arm), else the decision's,
    and its value from the row's raw value divided by the reward definition's
    maximum ``scale`` (rows of kind ``none``, implicit zeros, are zero), ordered by
    ``(update_seq, update_pos)``.
    """
    q = (
        select(
            Reward.update_seq, Reward.kind, Reward.value, func.coalesce(Reward.arm, Decision.arm)
        )
        .join(Decision, Decision.id == Reward.decision_id)
        .where(Reward.experiment_id == experiment_id, Reward.learned)
        .order_by(Reward.update_seq, Reward.update_pos)
    )
    for seq, kind, value, arm in session.execute(q).yield_per(10_000):
        yield Observation(seq, arm, 0.0 if kind == "none" else value / scale)


def replay(policy: Policy, log: Iterable[Observation]) -> tuple[int, int]:
    """Apply ``log`` to ``policy``, one ``update_batch`` per update; (updates, observations)."""
    updates = count = 0
    cur_seq: int | None = None
    arms: list[int] = []
    rewards: list[float] = []

    def flush() -> None:
        nonlocal updates
        if arms:
            policy.update_batch(np.asarray(arms, dtype=np.int64), np.asarray(rewards, dtype=float))
            updates += 1
            arms.clear()
            rewards.clear()

    for obs in log:
        if obs.update_seq != cur_seq:
            flush()
            cur_seq = obs.update_seq
        arms.append(obs.arm)
        rewards.append(obs.reward)
        count += 1
    flush()
    return updates, count


def _feeding(log: Iterable[Observation], builder: series.SeriesBuilder) -> Iterator[Observation]:
    """``log`` unchanged, each observation also added to ``builder``."""
    for obs in log:
        assert obs.update_seq is not None
        builder.add(obs.update_seq, obs.arm, obs.reward)
        yield obs
    builder.flush()


def rebuild(session: Session, key: str, write: bool = False) -> RebuildResult:
    """Recompute the policy and its ``arm_series`` rows from the stored decisions and
    rewards, in the logged order.

    Rewards are grouped by ``update_seq`` and replayed with one ``update_batch`` per group,
    ordered by ``update_pos``, exactly as the live learners applied them (see
    :func:`observations`). With ``write=True`` the rebuilt state replaces the live one and
    the rebuilt series the stored one (under the lock).
    """
    exp, state = lock(session, key) if write else load(session, key)
    policy = policies.build_policy(exp)
    scale = max(exp.reward_definition.values())
    builder = series.SeriesBuilder(len(exp.arms))
    updates, count = replay(policy, _feeding(observations(session, exp.id, scale), builder))
    rebuilt = jsonable(policy.state_dict())
    allocation = policies.allocation_of(policy)
    live_series = series.stored(session, exp.id)
    differences = series.differences(builder.rows, live_series)
    result = RebuildResult(
        key, updates, count, state.version, rebuilt, state.state, allocation, differences
    )
    if write:
        session.execute(
            update(PolicyState)
            .where(PolicyState.experiment_id == exp.id)
            .values(state=rebuilt, allocation=allocation, updated_at=utcnow())
        )
        series.replace(session.connection(), exp.id, builder.rows)
        session.commit()
    else:
        session.rollback()
    return result
