"""The locked policy update shared by rewards and settling, and the settling pass.

See :mod:`service.store` for why each update locks the experiment's ``policy_states`` row.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import exists, insert, select, update
from sqlalchemy.orm import Session

from bandit import Policy
from service import policies
from service.errors import Invalid
from service.models import Decision, Experiment, PolicyState, PolicyUpdate, Reward, utcnow
from service.store.common import as_utc, lock
from service.store.rows import RewardRow, arm_deltas, bump_arm_stats, insert_rewards

SETTLE_PREFIX = "settle:"  # idempotency keys of the implicit zero rewards


@dataclass
class Learner:
    """One locked learning transaction on one experiment.

    Observations are queued with :meth:`learn` and applied together by :meth:`apply`, as
    one ``update_batch`` and one ``policy_updates`` row.
    """

    session: Session
    exp: Experiment
    state: PolicyState
    cache: policies.PolicyCache
    policy: Policy | None = None
    arms: list[int] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)

    @property
    def scale(self) -> float:
        """The reward definition's maximum: raw values are divided by it for the policy."""
        return max(self.exp.reward_definition.values())

    def load(self) -> Policy:
        """The policy at the locked version (from the cache when it is current)."""
        if self.policy is None:
            self.policy = self.cache.take(self.exp.id, self.state.version)
            if self.policy is None:
                self.policy = policies.restore(self.state.state)
        return self.policy

    def learn(self, arm: int, normalized: float) -> int:
        """Queue one observation; returns its position in this update."""
        self.arms.append(arm)
        self.rewards.append(normalized)
        return len(self.arms) - 1

    @property
    def next_seq(self) -> int:
        return self.state.version + 1

    def apply(self, kind: str) -> int | None:
        """Apply the queued observations; returns the new version (None if nothing queued)."""
        if not self.arms:
            return None
        policy = self.load()
        try:
            policy.update_batch(
                np.asarray(self.arms, dtype=np.int64), np.asarray(self.rewards, dtype=float)
            )
            allocation, state = policies.checked_result(policy)
        except (ValueError, IndexError) as err:
            self.policy = None  # possibly half-updated: never reuse it
            raise Invalid(f"the policy rejected these rewards: {err}") from err
        seq = self.next_seq
        now = utcnow()
        self.session.execute(
            update(PolicyState)
            .where(PolicyState.experiment_id == self.exp.id)
            .values(
                version=seq,
                state=state,
                allocation=allocation,
                settled_until=self.state.settled_until,
                updated_at=now,
            )
        )
        self.session.execute(
            insert(PolicyUpdate).values(
                experiment_id=self.exp.id,
                seq=seq,
                kind=kind,
                n_rewards=len(self.arms),
                allocation=allocation,
                created_at=now,
            )
        )
        self.state.version = seq
        return seq

    def committed(self) -> None:
        """Hand the updated policy to the cache (call after the commit succeeded)."""
        if self.policy is not None:
            self.cache.put(self.exp.id, self.state.version, self.policy)


def settle_window(learner: Learner, now: dt.datetime) -> list[RewardRow]:
    """Queue a zero reward for each decision whose window closed with nothing learned.

    ``policy_states.settled_until`` is a watermark: decisions created before it have been
    settled. Runs under the policy-state lock. Returns the reward rows to insert.
    """
    exp, state = learner.exp, learner.state
    if exp.reward_window_s is None or exp.status == "stopped":
        return []
    cutoff = now - dt.timedelta(seconds=exp.reward_window_s)
    low = as_utc(state.settled_until) if state.settled_until else as_utc(exp.created_at)
    if cutoff <= low:
        return []
    rewarded = exists().where(
        Reward.decision_id == Decision.id, Reward.experiment_id == exp.id, Reward.learned
    )
    rows = learner.session.execute(
        select(Decision.id, Decision.arm)
        .where(
            Decision.experiment_id == exp.id,
            Decision.created_at >= low,
            Decision.created_at < cutoff,
            ~Decision.fallback,
            ~rewarded,
        )
        .order_by(Decision.created_at, Decision.id)
    ).all()
    state.settled_until = cutoff
    return [
        RewardRow(
            experiment_id=exp.id,
            idempotency_key=f"{SETTLE_PREFIX}{decision_id}",
            request_hash="",
            decision_id=decision_id,
            arm=arm,
            kind="none",
            value=0.0,
            item=None,
            status="learned",
            created_at=now,
            learned=True,
            normalized=0.0,
            update_pos=learner.learn(arm, 0.0),
        )
        for decision_id, arm in rows
    ]


def settle(
    session: Session, key: str, cache: policies.PolicyCache, now: dt.datetime | None = None
) -> int:
    """Learn the zero reward of every decision whose window closed unrewarded.

    Returns the number of decisions settled.
    """
    now = now or utcnow()
    exp, state = lock(session, key)
    learner = Learner(session, exp, state, cache)
    rows = settle_window(learner, now)
    seq = learner.apply("settle")
    deltas = arm_deltas()
    for r in rows:
        r.update_seq = seq
        assert r.arm is not None
        deltas[r.arm].observe(0.0, 0.0)
    if rows:
        insert_rewards(session.connection(), rows)
        bump_arm_stats(session.connection(), exp.id, deltas)
    else:
        session.execute(
            update(PolicyState)
            .where(PolicyState.experiment_id == exp.id)
            .values(settled_until=state.settled_until)
        )
    session.commit()
    learner.committed()
    return len(rows)


def settle_all(session: Session, cache: policies.PolicyCache) -> int:
    """Settle every experiment that has a reward window and is not stopped."""
    keys = session.scalars(
        select(Experiment.key).where(
            Experiment.status != "stopped", Experiment.reward_window_s.is_not(None)
        )
    ).all()
    session.rollback()
    return sum(settle(session, k, cache) for k in keys)
