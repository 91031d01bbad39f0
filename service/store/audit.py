"""Audit: rebuild a policy from the stored log and compare it with the live one."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from bandit import Policy
from service import policies
from service.models import Decision, PolicyState, PolicyUpdate, Reward, utcnow
from service.store import series
from service.store.arms import ARMS_UPDATE, active_arms, apply_change, expand, initial_arm_count
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
    maximum ``scale`` (rows of kind ``none``, implicit zeros, are zero) unless the row holds
    what the policy saw (``normalized``: always the same quotient, except for split or
    position-corrected slots, whose value is the credited raw value), ordered by
    ``(update_seq, update_pos)``.
    """
    q = (
        select(
            Reward.update_seq,
            Reward.kind,
            Reward.value,
            func.coalesce(Reward.arm, Decision.arm),
            Reward.normalized,
        )
        .join(Decision, Decision.id == Reward.decision_id)
        .where(Reward.experiment_id == experiment_id, Reward.learned)
        .order_by(Reward.update_seq, Reward.update_pos)
    )
    for seq, kind, value, arm, normalized in session.execute(q).yield_per(10_000):
        if kind == "none":
            reward = 0.0
        elif normalized is not None:
            reward = normalized
        else:
            reward = value / scale
        yield Observation(seq, arm, reward)


def arm_changes(session: Session, experiment_id: int) -> list[tuple[int, dict[str, Any]]]:
    """The arm changes of an experiment (policy updates of kind ``arms``), by version."""
    rows = session.execute(
        select(PolicyUpdate.seq, PolicyUpdate.change)
        .where(PolicyUpdate.experiment_id == experiment_id, PolicyUpdate.kind == ARMS_UPDATE)
        .order_by(PolicyUpdate.seq)
    ).all()
    return [(int(seq), dict(change)) for seq, change in rows]


def replay(
    policy: Policy,
    log: Iterable[Observation],
    changes: Sequence[tuple[int, dict[str, Any]]] = (),
    active: list[int] | None = None,
) -> tuple[int, int]:
    """Apply ``log`` to ``policy``, one ``update_batch`` per update, and each arm change
    (``changes``: version, change) before the updates that follow it; returns (updates,
    observations), arm changes counted as updates.

    ``active`` maps policy index to experiment arm (default: the identity); the log's arms
    are experiment indices, as stored.
    """
    active = list(range(policy.n_arms)) if active is None else active
    pending = list(changes)
    updates = count = 0
    cur_seq: int | None = None
    arms: list[int] = []
    rewards: list[float] = []

    def flush() -> None:
        nonlocal updates
        if arms:
            index = {a: j for j, a in enumerate(active)}
            mapped = np.asarray([index[a] for a in arms], dtype=np.int64)
            policy.update_batch(mapped, np.asarray(rewards, dtype=float))
            updates += 1
            arms.clear()
            rewards.clear()

    def changes_before(seq: int | None) -> None:
        nonlocal updates
        while pending and (seq is None or pending[0][0] < seq):
            apply_change(policy, active, pending.pop(0)[1])
            updates += 1

    for obs in log:
        if obs.update_seq != cur_seq:
            flush()
            cur_seq = obs.update_seq
            changes_before(cur_seq)
        arms.append(obs.arm)
        rewards.append(obs.reward)
        count += 1
    flush()
    changes_before(None)
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
    :func:`observations`); arms added or retired over HTTP are added to / removed from the
    policy at their version (:mod:`.arms`). With ``write=True`` the rebuilt state replaces
    the live one and the rebuilt series the stored one (under the lock).
    """
    exp, state = lock(session, key) if write else load(session, key)
    changes = arm_changes(session, exp.id)
    n_initial = initial_arm_count(len(exp.arms), [c for _, c in changes])
    policy = policies.build_policy(exp, n_initial)
    scale = max(exp.reward_definition.values())
    added = [v for v, c in changes if c["action"] == "add"]
    builder = series.SeriesBuilder(len(exp.arms), n_initial, added)
    log = _feeding(observations(session, exp.id, scale), builder)
    updates, count = replay(policy, log, changes, list(range(n_initial)))
    rebuilt = jsonable(policy.state_dict())
    allocation = expand(
        policies.allocation_of(policy), active_arms(len(exp.arms), exp.retired), len(exp.arms)
    )
    differences = series.differences(builder.rows, series.stored(session, exp.id))
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
