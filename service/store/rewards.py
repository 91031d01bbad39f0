"""Rewards: store and learn clicks and conversions (``/v1/experiments/{key}/rewards``).

:func:`record_rewards` runs in one transaction under the experiment's policy-state lock
(see :mod:`service.store`), in steps that each do one thing: check the keys against the
stored ones (:func:`plan_keys`), look up the decisions, judge each new reward
(:func:`judge`), apply the learned ones to the policy, write the rows and counters, and
answer each item (:func:`answers`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from service import policies
from service.errors import Invalid
from service.models import Decision, Reward, utcnow
from service.schemas import RewardCreate, RewardOut
from service.store import series
from service.store.common import CHUNK, as_utc, lock
from service.store.learning import (
    SETTLE_PREFIX,
    Learner,
    mark_learned,
    observe,
    observe_slots,
    pending_max,
    settle_window,
)
from service.store.rows import (
    ArmDelta,
    DecisionRef,
    RewardRow,
    add_duplicates,
    arm_deltas,
    bump_arm_stats,
    insert_rewards,
)

Item = tuple[str, RewardCreate]  # (idempotency key, reward)


def request_hash(item: RewardCreate) -> str:
    """SHA-256 of the reward's canonical body: a retry must repeat it exactly."""
    body = {
        "decision_id": item.decision_id,
        "kind": item.kind,
        "value": item.value,
        "item": item.item,
        **({"item_id": item.item_id} if item.item_id is not None else {}),
        **({"position": item.position} if item.position is not None else {}),
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


@dataclass
class KeyPlan:
    """How each item's idempotency key relates to stored rows and to the rest of the batch."""

    hashes: list[str]
    existing: dict[str, Reward]  # key -> stored row (the item is a retry)
    first: dict[str, int] = field(default_factory=dict)  # new key -> index of its first item
    new: list[int] = field(default_factory=list)  # indices of the items to insert

    def in_batch_repeats(self, items: Sequence[Item]) -> Counter[str]:
        """Later items repeating a new key of this batch (duplicates too)."""
        return Counter(
            k for i, (k, _) in enumerate(items) if k in self.first and self.first[k] != i
        )

    def retries(self, items: Sequence[Item]) -> Counter[str]:
        """Items repeating a stored key."""
        return Counter(k for k, _ in items if k in self.existing)


def _check_reserved(keys: Sequence[str]) -> None:
    reserved = [k for k in keys if k.startswith(SETTLE_PREFIX)]
    if reserved:
        raise Invalid(
            f"idempotency keys starting with {SETTLE_PREFIX!r} are reserved: {reserved[0]!r}"
        )


# Built once (see :mod:`.common`); ``ids`` and ``keys`` expand to the IN list of each chunk.
_STORED = select(Reward).where(
    Reward.experiment_id == bindparam("e"),
    Reward.idempotency_key.in_(bindparam("keys", expanding=True)),
)
_DECISIONS = select(
    Decision.id, Decision.arm, Decision.created_at, Decision.fallback, Decision.items
).where(
    Decision.experiment_id == bindparam("e"),
    Decision.id.in_(bindparam("ids", expanding=True)),
)
_LEARNED = select(Reward.decision_id).where(
    Reward.experiment_id == bindparam("e"),
    Reward.learned,
    Reward.decision_id.in_(bindparam("ids", expanding=True)),
)


def _stored(session: Session, experiment_id: int, keys: Sequence[str]) -> dict[str, Reward]:
    out: dict[str, Reward] = {}
    for i in range(0, len(keys), CHUNK):
        for found in session.scalars(_STORED, {"e": experiment_id, "keys": keys[i : i + CHUNK]}):
            out[found.idempotency_key] = found
    return out


def plan_keys(session: Session, experiment_id: int, items: Sequence[Item]) -> KeyPlan:
    """Sort items into new rows and retries; :class:`Invalid` if a key changes its body."""
    keys = list(dict.fromkeys(k for k, _ in items))
    _check_reserved(keys)
    plan = KeyPlan([request_hash(item) for _, item in items], _stored(session, experiment_id, keys))
    conflicts: list[str] = []
    for i, ((k, _), h) in enumerate(zip(items, plan.hashes, strict=True)):
        if k in plan.existing:
            if plan.existing[k].request_hash != h:
                conflicts.append(k)
        elif k in plan.first:
            if plan.hashes[plan.first[k]] != h:
                conflicts.append(k)
        else:
            plan.first[k] = i
            plan.new.append(i)
    if conflicts:
        shown = ", ".join(repr(c) for c in conflicts[:5])
        more = f" and {len(conflicts) - 5} more" if len(conflicts) > 5 else ""
        raise Invalid(
            f"Idempotency key reused with a different body: {shown}{more}. A retry must "
            "repeat the first request exactly; use a new key for a new reward."
        )
    return plan


def find_decisions(
    session: Session, experiment_id: int, decision_ids: Sequence[str]
) -> dict[str, DecisionRef]:
    """The logged decisions among ``decision_ids`` (absent ones are orphans' ids)."""
    out: dict[str, DecisionRef] = {}
    for j in range(0, len(decision_ids), CHUNK):
        for did, arm, created, fb, shown in session.execute(
            _DECISIONS, {"e": experiment_id, "ids": decision_ids[j : j + CHUNK]}
        ):
            out[did] = DecisionRef(arm, as_utc(created), fb, shown)
    return out


@dataclass
class Progress:
    """Where one decision stands in this transaction: learned, or its pending rewards."""

    learned: bool
    pending_max: float | None = None
    new_pending: list[RewardRow] = field(default_factory=list)  # this batch's pending rows
    slots: dict[int, float] = field(default_factory=dict)  # fused: position -> this batch's max


def decision_progress(
    session: Session, experiment_id: int, decision_ids: Sequence[str]
) -> dict[str, Progress]:
    """For each decision: whether it was learned, and its largest stored pending value."""
    learned: set[str] = set()
    for j in range(0, len(decision_ids), CHUNK):
        learned.update(
            session.scalars(_LEARNED, {"e": experiment_id, "ids": decision_ids[j : j + CHUNK]})
        )
    pending = pending_max(session, experiment_id, decision_ids)
    return {d: Progress(d in learned, pending.get(d)) for d in decision_ids}


@dataclass
class _Judge:
    """Judges the new rewards of one transaction: status, learning, counters.

    Follows the one-observation-per-decision rule of :mod:`.learning`.
    """

    learner: Learner
    now: dt.datetime
    progress: dict[str, Progress]
    deltas: dict[int, ArmDelta] = field(default_factory=arm_deltas)
    observations: list[RewardRow] = field(default_factory=list)
    _bounded: bool | None = None

    def bounded(self) -> bool:
        if self._bounded is None:
            self._bounded = policies.is_bounded(self.learner.load())
        return self._bounded

    def judge(
        self, key: str, hash_: str, item: RewardCreate, decision: DecisionRef | None
    ) -> RewardRow:
        """The row for one new reward.

        A reward counts toward its decision when its kind is in the reward definition, its
        decision was not a fallback, the experiment is not stopped, the decision is not
        learned yet and the reward arrived within the window (or the experiment learns late
        rewards). It is then ``pending``, or ``learned`` with its decision when that reaches
        the definition's maximum (or has no window). Raises :class:`Invalid` for a value
        outside ``[0, maximum of its kind]`` on a policy with bounded rewards, and for one the
        policy would refuse to learn (its ``reward_range``), counted or not.
        """
        exp = self.learner.exp
        weight = exp.reward_definition.get(item.kind)
        value = item.value if item.value is not None else (weight if weight is not None else 1.0)
        row = RewardRow(
            experiment_id=exp.id,
            idempotency_key=key,
            request_hash=hash_,
            decision_id=item.decision_id,
            arm=None,
            kind=item.kind,
            value=float(value),
            item=item.item,
            status="ignored",
            created_at=self.now,
        )
        if decision is None:
            row.status, row.orphan = "orphan", True
            return row
        fused = exp.mode == "fuse" and bool(decision.items)
        row.arm = decision.arm
        credited = [decision.arm]  # the arms the reward's credit goes to
        if item.item_id is not None or item.position is not None:
            slot = decision.slot_of(item.item_id, item.position)
            if slot is None:  # a click on an item the decision did not show
                row.status, row.orphan = "unshown", True
                return row
            assert decision.items is not None
            shown = decision.items[slot]
            row.position, row.arm = slot, int(shown["arm"])  # credit: the arm that placed it
            credited = [int(a) for a, _ in shown.get("credit") or [[row.arm, 1.0]]]
            if row.item is None:
                row.item = str(shown["item"])
        elif fused:
            raise Invalid(
                f"decision {item.decision_id} showed a fused list: a reward must name its "
                "item_id or position, to credit the arm that placed the item"
            )
        delta = self.deltas[row.arm]
        if value > 0:  # a click / conversion reported with value 0 means "none happened"
            if item.kind == "click":
                delta.clicks += 1
            else:
                delta.conversions += 1
        window = exp.reward_window_s
        row.late = window is not None and (self.now - decision.created_at).total_seconds() > window
        if weight is not None and self.bounded() and not (0.0 <= value <= weight):
            raise Invalid(
                f"reward value {value} for kind {item.kind!r} is outside [0, {weight}] "
                f"set by the experiment's reward definition (decision {item.decision_id})"
            )
        if weight is not None:
            policies.check_reward(
                self.learner.load(), value / self.learner.scale, f"reward value {value}"
            )
        if weight is None or decision.fallback or exp.status == "stopped":
            return row  # stored, counted, not learned
        if all(self.learner.is_retired(a) for a in credited):
            row.status = "retired"  # its arm(s) retired since: counted, not learned
            return row
        progress = self.progress[item.decision_id]
        if progress.learned or (row.late and not exp.learn_late):
            row.status = "late" if row.late else "ignored"
            return row
        row.status = "pending"
        progress.new_pending.append(row)
        if fused:  # one observation per shown slot, when the window closes (or now: none)
            assert row.position is not None and decision.items is not None
            progress.slots[row.position] = max(row.value, progress.slots.get(row.position, 0.0))
            if window is None:
                self._learn_slots(item.decision_id, decision.items, progress.slots)
            return row
        best = row.value if progress.pending_max is None else max(progress.pending_max, row.value)
        progress.pending_max = best
        if window is None or best >= self.learner.scale:
            self._learn(item.decision_id, decision.arm, best)
        return row

    def _learn_slots(self, decision_id: str, items: list[Any], slots: dict[int, float]) -> None:
        for obs in observe_slots(self.learner, decision_id, items, slots, self.now):
            self.observations.append(obs)
            assert obs.arm is not None and obs.normalized is not None
            self.deltas[obs.arm].observe(obs.value, obs.normalized)
        self.learned(decision_id)

    def _learn(self, decision_id: str, arm: int, value: float) -> None:
        obs = observe(self.learner, decision_id, arm, value, self.now)
        self.observations.append(obs)
        assert obs.normalized is not None
        self.deltas[arm].observe(value, obs.normalized)
        self.learned(decision_id)

    def learned(self, decision_id: str) -> None:
        """Mark a decision learned: its pending rows of this batch become ``learned``."""
        progress = self.progress.setdefault(decision_id, Progress(True))
        progress.learned = True
        for row in progress.new_pending:
            row.status = "learned"
        progress.new_pending.clear()

    def learned_ids(self) -> set[str]:
        return {d for d, p in self.progress.items() if p.learned}

    def still_pending_slots(self) -> dict[str, dict[int, float]]:
        """Decision id -> position -> largest value, for this batch's fused decisions."""
        return {d: p.slots for d, p in self.progress.items() if not p.learned and p.slots}

    def still_pending(self) -> dict[str, float]:
        """Decision id -> largest value, for this batch's decisions not learned yet."""
        return {
            d: p.pending_max
            for d, p in self.progress.items()
            if not p.learned and p.pending_max is not None
        }


def answers(
    items: Sequence[Item], plan: KeyPlan, new_rows: list[RewardRow], ids: dict[str, int]
) -> list[RewardOut]:
    """One answer per item, in order: a stored row's replay or the new row."""
    new_pos = {i: n for n, i in enumerate(plan.new)}
    results: list[RewardOut] = []
    for i, (k, _) in enumerate(items):
        if k in plan.existing:
            results.append(_replay(plan.existing[k]))
            continue
        first = plan.first[k]
        row = new_rows[new_pos[first]]
        results.append(
            RewardOut(
                reward_id=ids[k],
                idempotency_key=k,
                decision_id=row.decision_id,
                kind=row.kind,
                value=row.value,
                status=row.status,  # type: ignore[arg-type]
                replayed=first != i,
                policy_version=row.update_seq,
            )
        )
    return results


def _replay(r: Reward) -> RewardOut:
    return RewardOut(
        reward_id=r.id,
        idempotency_key=r.idempotency_key,
        decision_id=r.decision_id,
        kind=r.kind,
        value=r.value,
        status=r.status,  # type: ignore[arg-type]
        replayed=True,
        policy_version=r.update_seq,
    )


def record_rewards(
    session: Session,
    key: str,
    items: Sequence[Item],
    cache: policies.PolicyCache,
    now: dt.datetime | None = None,
) -> tuple[list[RewardOut], int]:
    """Store and learn ``items`` (idempotency key, reward) in one locked transaction.

    Returns one result per item, in order, and the policy version afterwards. Raises
    :class:`Invalid` (nothing stored) when a key is reused with another body or a value is
    out of range; unknown decisions are stored as orphans (the single endpoint answers 404).
    """
    now = now or utcnow()
    exp, state = lock(session, key)
    learner = Learner(session, exp, state, cache)
    plan = plan_keys(session, exp.id, items)
    ids_new = list({items[i][1].decision_id for i in plan.new})
    decisions = find_decisions(session, exp.id, ids_new)
    judge = _Judge(learner, now, decision_progress(session, exp.id, list(decisions)))
    new_rows = [
        judge.judge(
            items[i][0], plan.hashes[i], items[i][1], decisions.get(items[i][1].decision_id)
        )
        for i in plan.new
    ]
    settled = (
        settle_window(
            learner,
            now,
            judge.still_pending(),
            judge.learned_ids(),
            judge.still_pending_slots(),
        )
        if plan.new
        else []
    )
    for obs in settled:  # decisions whose window closed, this batch's rewards included
        assert obs.arm is not None and obs.normalized is not None
        judge.deltas[obs.arm].observe(obs.value, obs.normalized)
        judge.learned(obs.decision_id)
    observations = judge.observations + settled

    seq = learner.apply("rewards")
    for row in observations + new_rows:
        row.update_seq = seq if row.status == "learned" else None
    conn = session.connection()
    ids = insert_rewards(conn, observations + new_rows)
    if seq is not None:
        mark_learned(conn, exp.id, [o.decision_id for o in observations], seq)
    bump_arm_stats(conn, exp.id, judge.deltas)
    if seq is not None:
        series.snapshot(conn, exp.id, seq)
    add_duplicates(conn, exp.id, plan.retries(items))
    add_duplicates(conn, exp.id, plan.in_batch_repeats(items))
    results = answers(items, plan, new_rows, ids)
    session.commit()
    learner.committed()
    return results, learner.state.version
