"""The locked policy update shared by rewards and settling, and the settling pass.

One observation per decision
----------------------------
A decision's reward is the **largest value among its rewards** whose kind is in the
experiment's reward definition (a conversion worth 5 and a click worth 1 make 5), divided
by the definition's maximum for the policy. It is learned **once**, as one observation:

* as soon as it reaches the definition's maximum (nothing later could raise it), or
* when its reward window closes (``reward_window_s`` after the decision), with what it has
  then, zero if nothing came; by the settling pass or by the next reward transaction,
* without a window (``reward_window_s`` null), at its first reward.

Until then its rewards are stored as ``pending``; afterwards they are ``learned``. A reward
for a decision already learned is stored but not learned (``late`` after the window,
``ignored`` otherwise). Each observation is logged as one row of kind ``decision`` with key
``settle:<decision id>`` (unique, so a decision cannot be learned twice), which is what the
rebuild replays.

See :mod:`service.store` for why each update locks the experiment's ``policy_states`` row.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import Connection, bindparam, exists, func, insert, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from bandit import Policy
from bandit.fusion.position import Examination
from service import policies
from service.background import BackgroundFailures
from service.errors import Invalid
from service.models import Decision, Experiment, PolicyState, PolicyUpdate, Reward, utcnow
from service.store import series
from service.store.arms import active_arms, expand
from service.store.common import CHUNK, as_utc, lock
from service.store.position import covering, current_examination
from service.store.rows import RewardRow, arm_deltas, bump_arm_stats, insert_rewards
from service.store.slots import slot_values

log = logging.getLogger("bandit_fusion.service")

SETTLE_PREFIX = "settle:"  # idempotency keys of the observation rows (one per decision)


_STATES = PolicyState.__table__
# Built once (see :mod:`.common`): the policy update of every learning transaction.
_SAVE_STATE = (
    update(_STATES)  # type: ignore[arg-type]
    .where(_STATES.c.experiment_id == bindparam("e"))
    .values(
        version=bindparam("version"),
        state=bindparam("state"),
        allocation=bindparam("allocation"),
        settled_until=bindparam("settled_until"),
        updated_at=bindparam("updated_at"),
    )
)
_LOG_UPDATE = insert(PolicyUpdate.__table__)  # type: ignore[arg-type]


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
    _examination: tuple[Examination | None, float] | None = None

    def examination(self) -> tuple[Examination | None, float]:
        """The position correction of this transaction (see :mod:`.position`), and its
        ``max_weight``; read (and refreshed) once per transaction."""
        if self._examination is None:
            self._examination = current_examination(self.session, self.exp, self.state)
        return self._examination

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

    @property
    def active(self) -> list[int]:
        """The experiment arms the policy holds, in policy order (see :mod:`.arms`)."""
        return active_arms(len(self.exp.arms), self.exp.retired)

    def is_retired(self, arm: int) -> bool:
        """True for an arm retired over HTTP: it is no longer the policy's to learn."""
        return arm in (self.exp.retired or ())

    def learn(self, arm: int, normalized: float) -> int:
        """Queue one observation of experiment arm ``arm`` (an active one); returns its
        position in this update."""
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
        active = self.active
        index = {a: j for j, a in enumerate(active)}
        try:
            policy.update_batch(
                np.asarray([index[a] for a in self.arms], dtype=np.int64),
                np.asarray(self.rewards, dtype=float),
            )
            allocation, state = policies.checked_result(policy)
            allocation = expand(allocation, active, len(self.exp.arms))
        except (ValueError, IndexError) as err:
            self.policy = None  # possibly half-updated: never reuse it
            raise Invalid(f"the policy rejected these rewards: {err}") from err
        seq = self.next_seq
        now = utcnow()
        conn = self.session.connection()
        conn.execute(
            _SAVE_STATE,
            {
                "e": self.exp.id,
                "version": seq,
                "state": state,
                "allocation": allocation,
                "settled_until": self.state.settled_until,
                "updated_at": now,
            },
        )
        conn.execute(
            _LOG_UPDATE,
            {
                "experiment_id": self.exp.id,
                "seq": seq,
                "kind": kind,
                "n_rewards": len(self.arms),
                "allocation": allocation,
                "created_at": now,
            },
        )
        # the session's copy of the row, as stored (Core statements leave it untouched)
        for name, value in (
            ("version", seq),
            ("state", state),
            ("allocation", allocation),
            ("updated_at", now),
        ):
            set_committed_value(self.state, name, value)
        return seq

    def committed(self) -> None:
        """Hand the updated policy to the cache (call after the commit succeeded)."""
        if self.policy is not None:
            self.cache.put(self.exp.id, self.state.version, self.policy)


OBSERVATION = "decision"  # kind of the row that records a decision's one observation


def observe(
    learner: Learner, decision_id: str, arm: int, value: float, now: dt.datetime
) -> RewardRow:
    """Queue the one observation of a decision, of raw ``value``; returns its log row.

    The row (key ``settle:<decision id>``, kind ``decision``) is what :mod:`.audit` replays;
    the key is unique per experiment, so a decision can never be learned twice.
    """
    normalized = value / learner.scale
    return RewardRow(
        experiment_id=learner.exp.id,
        idempotency_key=f"{SETTLE_PREFIX}{decision_id}",
        request_hash="",
        decision_id=decision_id,
        arm=arm,
        kind=OBSERVATION,
        value=float(value),
        item=None,
        status="learned",
        created_at=now,
        learned=True,
        normalized=normalized,
        update_pos=learner.learn(arm, normalized),
    )


def observe_slots(
    learner: Learner,
    decision_id: str,
    items: list[Any],
    values: dict[int, float],
    now: dt.datetime,
) -> list[RewardRow]:
    """Queue the observations of a fused decision (:func:`.slots.slot_values`): one per
    shown slot for its source arm, or, for a deterministic fuser, one per (slot, arm with a
    share of the item's score).

    ``values`` maps a position to the largest value among its rewards (other slots: 0).
    The rows have keys ``settle:<decision id>:<position>`` (``...:<position>:<arm>`` when
    a slot is split). Observations of arms retired since are dropped. With the experiment's
    position correction, each slot's value is corrected per :mod:`.position`.
    """
    exp = learner.exp
    examination, max_weight = learner.examination()
    if examination is not None:
        examination = covering(examination, len(items))
    rows = []
    for obs in slot_values(items, values, learner.scale, len(exp.arms), examination, max_weight):
        if learner.is_retired(obs.arm):
            continue  # its arm was retired since: not the policy's any more
        suffix = f":{obs.arm}" if obs.split else ""
        rows.append(
            RewardRow(
                experiment_id=exp.id,
                idempotency_key=f"{SETTLE_PREFIX}{decision_id}:{obs.position}{suffix}",
                request_hash="",
                decision_id=decision_id,
                arm=obs.arm,
                kind=OBSERVATION,
                value=obs.value,
                item=str(items[obs.position]["item"]),
                status="learned",
                created_at=now,
                position=obs.position,
                learned=True,
                normalized=obs.normalized,
                update_pos=learner.learn(obs.arm, obs.normalized),
            )
        )
    return rows


# Built once (see :mod:`.common`); ``ids`` expands to the IN list of each chunk.
_PENDING_SLOT_MAX = (
    select(Reward.decision_id, Reward.position, func.max(Reward.value))
    .where(
        Reward.experiment_id == bindparam("e"),
        Reward.status == "pending",
        Reward.position.is_not(None),
        Reward.decision_id.in_(bindparam("ids", expanding=True)),
    )
    .group_by(Reward.decision_id, Reward.position)
)
_PENDING_MAX = (
    select(Reward.decision_id, func.max(Reward.value))
    .where(
        Reward.experiment_id == bindparam("e"),
        Reward.status == "pending",
        Reward.decision_id.in_(bindparam("ids", expanding=True)),
    )
    .group_by(Reward.decision_id)
)
_REWARDS = Reward.__table__
_MARK_LEARNED = (
    update(_REWARDS)  # type: ignore[arg-type]
    .where(
        _REWARDS.c.experiment_id == bindparam("e"),
        _REWARDS.c.status == "pending",
        _REWARDS.c.decision_id.in_(bindparam("ids", expanding=True)),
    )
    .values(status="learned", update_seq=bindparam("seq"))
)


def pending_slot_max(
    session: Session, experiment_id: int, decision_ids: Sequence[str]
) -> dict[str, dict[int, float]]:
    """Per decision, the largest pending value of each position that has any."""
    out: dict[str, dict[int, float]] = {}
    for j in range(0, len(decision_ids), CHUNK):
        for did, pos, value in session.execute(
            _PENDING_SLOT_MAX, {"e": experiment_id, "ids": decision_ids[j : j + CHUNK]}
        ):
            if pos is not None:  # (the filter above: never None)
                out.setdefault(did, {})[int(pos)] = float(value)
    return out


def pending_max(
    session: Session, experiment_id: int, decision_ids: Sequence[str]
) -> dict[str, float]:
    """The largest value among the pending rewards of each of ``decision_ids`` that has any."""
    out: dict[str, float] = {}
    for j in range(0, len(decision_ids), CHUNK):
        for did, value in session.execute(
            _PENDING_MAX, {"e": experiment_id, "ids": decision_ids[j : j + CHUNK]}
        ):
            out[did] = float(value)
    return out


def settle_window(
    learner: Learner,
    now: dt.datetime,
    in_batch: dict[str, float] | None = None,
    learned: set[str] | frozenset[str] = frozenset(),
    in_batch_slots: dict[str, dict[int, float]] | None = None,
) -> list[RewardRow]:
    """Learn every decision whose reward window closed and that is not learned yet.

    Its observation is the largest value among its pending rewards (stored ones, and
    ``in_batch``: decision id -> largest pending value of the transaction's new rewards),
    or zero when it has none; decisions in ``learned`` were learned earlier in this
    transaction. A fused decision (mode ``fuse``) is learned slot by slot
    (:func:`observe_slots`), from the largest value of each position (``in_batch_slots``:
    the transaction's new ones). ``policy_states.settled_until`` is a watermark: decisions
    created before it have been settled. Runs under the policy-state lock. Returns the
    observation rows to insert; the caller marks their pending rewards learned.
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
        select(Decision.id, Decision.arm, Decision.items)
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
    ids = [did for did, _, _ in rows]
    stored = pending_max(learner.session, exp.id, ids)
    fused = exp.mode == "fuse"
    stored_slots = pending_slot_max(learner.session, exp.id, ids) if fused else {}
    extra = in_batch or {}
    extra_slots = in_batch_slots or {}
    out = []
    for did, arm, items in rows:
        if did in learned:
            continue
        if fused and items:
            slots = dict(stored_slots.get(did, {}))
            for pos, v in extra_slots.get(did, {}).items():
                slots[pos] = max(v, slots.get(pos, v))
            out.extend(observe_slots(learner, did, items, slots, now))
            continue
        if learner.is_retired(arm):
            continue  # a retired arm's decision: not the policy's to learn any more
        values = [v for v in (stored.get(did), extra.get(did)) if v is not None]
        out.append(observe(learner, did, arm, max(values) if values else 0.0, now))
    return out


def mark_learned(conn: Connection, experiment_id: int, decision_ids: list[str], seq: int) -> None:
    """Pending rewards of ``decision_ids`` become ``learned`` at policy version ``seq``."""
    for j in range(0, len(decision_ids), CHUNK):
        conn.execute(
            _MARK_LEARNED, {"e": experiment_id, "ids": decision_ids[j : j + CHUNK], "seq": seq}
        )


def settle(
    session: Session, key: str, cache: policies.PolicyCache, now: dt.datetime | None = None
) -> int:
    """Learn every decision whose window closed (see :func:`settle_window`).

    Returns the number of decisions learned.
    """
    now = now or utcnow()
    exp, state = lock(session, key)
    learner = Learner(session, exp, state, cache)
    rows = settle_window(learner, now)
    seq = learner.apply("settle")
    deltas = arm_deltas()
    for r in rows:
        r.update_seq = seq
        assert r.arm is not None and r.normalized is not None
        deltas[r.arm].observe(r.value, r.normalized)
    if rows:
        assert seq is not None
        conn = session.connection()
        insert_rewards(conn, rows)
        bump_arm_stats(conn, exp.id, deltas)
        series.snapshot(conn, exp.id, seq)
        mark_learned(conn, exp.id, [r.decision_id for r in rows], seq)
    else:
        session.execute(
            update(PolicyState)
            .where(PolicyState.experiment_id == exp.id)
            .values(settled_until=state.settled_until)
        )
    session.commit()
    learner.committed()
    return len(rows)


def settle_all(
    session: Session,
    cache: policies.PolicyCache,
    failures: BackgroundFailures | None = None,
    now: dt.datetime | None = None,
) -> int:
    """Settle every experiment that has a reward window and is not stopped.

    Each experiment is settled in its own transaction: a failure on one is logged, recorded
    in ``failures`` (shown in its health) and does not stop the others. Returns the number
    of decisions learned.
    """
    keys = session.scalars(
        select(Experiment.key).where(
            Experiment.status != "stopped", Experiment.reward_window_s.is_not(None)
        )
    ).all()
    session.rollback()
    total = 0
    for key in keys:
        try:
            total += settle(session, key, cache, now)
        except Exception as err:  # one experiment's failure must not stop the others
            session.rollback()
            log.exception("settling experiment %r failed", key)
            if failures is not None:
                failures.record(key, err)
        else:
            if failures is not None:
                failures.clear(key)
    return total
