"""Every read and write of the experiment store goes through this module.

Learning under concurrency
--------------------------
The policy of an experiment is one row of ``policy_states``. Every change to it (a batch of
rewards, the zero rewards of decisions whose window closed) runs in one transaction that

1. locks that row (``SELECT ... FOR UPDATE`` on PostgreSQL; on SQLite the transaction
   starts with ``BEGIN IMMEDIATE``, so writers are already serialised by the database lock),
2. restores the policy from the row (or from the per-process cache when the cached
   version is the row's version), applies ``update_batch`` to the learned rewards in
   request order,
3. writes the new state and allocation with ``version + 1``, appends ``policy_updates``
   row ``seq = version + 1`` and stamps each learned reward with ``(update_seq, update_pos)``.

We chose a row lock over atomic per-arm increments because the policies' states are not all
sums (discounting, sliding windows, change-point detection depend on the order of
observations): serialising the updates of one experiment gives one total order, which is
recorded in the log, and :func:`rebuild` replays exactly that order to an identical state.
Replicas and worker processes on one PostgreSQL server cannot lose an update: the second
learner waits on the lock and then reads the first one's committed state. Decisions do not
take this lock; they read the current allocation and insert a row, so they never wait for
learning on PostgreSQL (on SQLite all writers share one lock, by design of SQLite).

Idempotency: a reward's key (``Idempotency-Key`` header, ``reward_id``, or a generated
uuid) is unique per experiment. Since keys are checked under the same lock, a retry always
sees the first request's row and is answered from it; the same key with another body is a
422 and stores nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import Connection, and_, bindparam, exists, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service import policies, stats
from service.errors import Conflict, Invalid, NotFound
from service.models import (
    ApiKey,
    ArmStat,
    Decision,
    Experiment,
    PolicyState,
    PolicyUpdate,
    Reward,
    utcnow,
)
from service.schemas import (
    AllocationOut,
    DecisionCreate,
    DecisionOut,
    ExperimentCreate,
    ExperimentOut,
    HealthOut,
    RewardCreate,
    RewardOut,
    SampleRatioTest,
    StatsOut,
)

SCOPES = ("read", "write", "admin")  # each includes the ones before it
_CHUNK = 500  # IN-list size for look-ups
SETTLE_PREFIX = "settle:"  # idempotency keys of the implicit zero rewards


def as_utc(d: dt.datetime) -> dt.datetime:
    """SQLite hands back naive datetimes (stored in UTC); make them aware."""
    return d if d.tzinfo is not None else d.replace(tzinfo=dt.UTC)


# =========================================================================== experiments


def create_experiment(session: Session, spec: ExperimentCreate) -> ExperimentOut:
    arms = list(spec.arms)
    control = arms.index(spec.control_arm) if spec.control_arm is not None else None
    if spec.fallback_arm is not None:
        fallback = arms.index(spec.fallback_arm)
    else:
        fallback = control if control is not None else 0
    seed = spec.seed if spec.seed is not None else secrets.randbits(62)
    policy = policies.make(
        spec.policy,
        n_arms=len(arms),
        seed=seed,
        burn_in=spec.burn_in,
        floors=spec.floors,
        caps=spec.caps,
        control_arm=control,
        control_share=spec.control_share,
        params=spec.params,
    )
    allocation = policies.allocation_of(policy)
    now = utcnow()
    exp = Experiment(
        key=spec.key,
        name=spec.name or spec.key,
        arms=arms,
        policy=spec.policy,
        params=dict(policy.params) if getattr(policy, "params", None) else dict(spec.params),
        seed=seed,
        mode=spec.mode,
        reward_definition={k: float(v) for k, v in spec.reward.items()},
        floors=_per_arm(spec.floors, len(arms)),
        caps=_per_arm(spec.caps, len(arms)),
        control_arm=control,
        control_share=spec.control_share,
        burn_in=spec.burn_in,
        reward_window_s=spec.reward_window_s,
        learn_late=spec.learn_late,
        status="active",
        when_inactive=spec.when_inactive,
        fallback_arm=fallback,
        created_at=now,
        updated_at=now,
    )
    session.add(exp)
    try:
        session.flush()
    except IntegrityError as err:
        session.rollback()
        raise Conflict(f"an experiment with key {spec.key!r} already exists") from err
    state = PolicyState(
        experiment_id=exp.id,
        version=0,
        state=_jsonable(policy.state_dict()),
        allocation=allocation,
        settled_until=now,
        updated_at=now,
    )
    session.add(state)
    session.add(
        PolicyUpdate(
            experiment_id=exp.id,
            seq=0,
            kind="create",
            n_rewards=0,
            allocation=allocation,
            created_at=now,
        )
    )
    session.add_all(ArmStat(experiment_id=exp.id, arm=i) for i in range(len(arms)))
    try:
        session.commit()
    except IntegrityError as err:
        session.rollback()
        raise Conflict(f"an experiment with key {spec.key!r} already exists") from err
    return experiment_out(exp, state.version)


def _per_arm(v: float | list[float] | None, n: int) -> list[float] | None:
    if v is None:
        return None
    return [float(x) for x in v] if isinstance(v, list) else [float(v)] * n


def _jsonable(state: dict[str, Any]) -> dict[str, Any]:
    """Round-trip through JSON so that what we compare is what the database stores."""
    out: dict[str, Any] = json.loads(json.dumps(state))
    return out


def experiment_out(exp: Experiment, version: int) -> ExperimentOut:
    arms = exp.arms
    return ExperimentOut(
        key=exp.key,
        name=exp.name,
        arms=arms,
        policy=exp.policy,
        params=exp.params,
        seed=exp.seed,
        mode=exp.mode,
        reward=exp.reward_definition,
        floors=exp.floors,
        caps=exp.caps,
        control_arm=arms[exp.control_arm] if exp.control_arm is not None else None,
        control_share=exp.control_share,
        burn_in=exp.burn_in,
        reward_window_s=exp.reward_window_s,
        learn_late=exp.learn_late,
        status=exp.status,  # type: ignore[arg-type]
        when_inactive=exp.when_inactive,
        fallback_arm=arms[exp.fallback_arm],
        policy_version=version,
        created_at=as_utc(exp.created_at),
        updated_at=as_utc(exp.updated_at),
    )


def _get(session: Session, key: str) -> tuple[Experiment, PolicyState]:
    row = session.execute(
        select(Experiment, PolicyState)
        .join(PolicyState, PolicyState.experiment_id == Experiment.id)
        .where(Experiment.key == key)
    ).one_or_none()
    if row is None:
        raise NotFound(f"no experiment with key {key!r}")
    return row[0], row[1]


def get_experiment(session: Session, key: str) -> ExperimentOut:
    exp, state = _get(session, key)
    return experiment_out(exp, state.version)


def list_experiments(
    session: Session, limit: int, offset: int, status: str | None = None
) -> tuple[list[ExperimentOut], int]:
    cond = [Experiment.status == status] if status else []
    total = session.scalar(select(func.count()).select_from(Experiment).where(*cond)) or 0
    rows = session.execute(
        select(Experiment, PolicyState.version)
        .join(PolicyState, PolicyState.experiment_id == Experiment.id)
        .where(*cond)
        .order_by(Experiment.id)
        .limit(limit)
        .offset(offset)
    ).all()
    return [experiment_out(e, v) for e, v in rows], total


_TRANSITIONS = {
    "pause": ({"active", "paused"}, "paused"),
    "resume": ({"paused", "active"}, "active"),
    "stop": ({"active", "paused", "stopped"}, "stopped"),
}


def set_status(session: Session, key: str, action: str) -> ExperimentOut:
    allowed, target = _TRANSITIONS[action]
    exp, state = _get(session, key)
    if exp.status not in allowed:
        raise Conflict(f"experiment {key!r} is {exp.status} and cannot be {action}d")
    if exp.status != target:
        exp.status = target
        exp.updated_at = utcnow()
    session.commit()
    return experiment_out(exp, state.version)


# =========================================================================== decisions

_DECIDE = (
    select(
        Experiment.id,
        Experiment.arms,
        Experiment.status,
        Experiment.when_inactive,
        Experiment.fallback_arm,
        PolicyState.version,
        PolicyState.allocation,
    )
    .join(PolicyState, PolicyState.experiment_id == Experiment.id)
    .where(Experiment.key == bindparam("key"))
)
_INSERT_DECISION = insert(Decision.__table__)  # type: ignore[arg-type]


def decide(session: Session, key: str, body: DecisionCreate) -> DecisionOut:
    """Choose an arm for ``body.unit_id`` and commit the decision before returning it."""
    # Core statements on the session's connection: this is the hot path (no ORM overhead).
    # On PostgreSQL the two statements run in autocommit mode: no BEGIN / COMMIT round trips;
    # the INSERT is durable when it returns, and the SELECT needs no transaction. (SQLite
    # keeps its BEGIN IMMEDIATE transaction: there a commit is local and cheap.)
    if session.get_bind().dialect.name == "postgresql":
        conn = session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
    else:
        conn = session.connection()
    row = conn.execute(_DECIDE, {"key": key}).one_or_none()
    if row is None:
        raise NotFound(f"no experiment with key {key!r}")
    exp_id, arms, status, when_inactive, fallback_arm, version, allocation = row
    seed = secrets.randbits(63)
    if status != "active":
        if when_inactive == "reject":
            raise Conflict(f"experiment {key!r} is {status}; it takes no decisions")
        probabilities = [0.0] * len(arms)
        probabilities[fallback_arm] = 1.0
        arm, fallback = fallback_arm, True
    else:
        probabilities = allocation
        arm, fallback = policies.draw(probabilities, seed), False
    decision_id = uuid.uuid4().hex
    now = utcnow()
    conn.execute(
        _INSERT_DECISION,
        {
            "id": decision_id,
            "experiment_id": exp_id,
            "unit_id": body.unit_id,
            "arm": arm,
            "probabilities": probabilities,
            "policy_version": version,
            "seed": seed,
            "fallback": fallback,
            "context": body.context,
            "served_items": body.served_items,
            "created_at": now,
        },
    )
    session.commit()
    return DecisionOut(
        decision_id=decision_id,
        experiment=key,
        unit_id=body.unit_id,
        arm=arms[arm],
        arm_index=arm,
        probabilities=dict(zip(arms, probabilities, strict=True)),
        policy_version=version,
        fallback=fallback,
        created_at=now,
    )


# =========================================================================== learning


@dataclass
class _Learner:
    """One locked learning transaction on one experiment."""

    session: Session
    exp: Experiment
    state: PolicyState
    cache: policies.PolicyCache
    policy: Any = None
    arms: list[int] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)

    @property
    def scale(self) -> float:
        return max(self.exp.reward_definition.values())

    def load(self) -> Any:
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
        if self.policy is not None:
            self.cache.put(self.exp.id, self.state.version, self.policy)


def _lock(session: Session, key: str) -> tuple[Experiment, PolicyState]:
    exp = session.scalar(select(Experiment).where(Experiment.key == key))
    if exp is None:
        raise NotFound(f"no experiment with key {key!r}")
    state = session.scalar(
        select(PolicyState)
        .where(PolicyState.experiment_id == exp.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert state is not None
    return exp, state


def _settle(learner: _Learner, now: dt.datetime) -> list[dict[str, Any]]:
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
    out = []
    for decision_id, arm in rows:
        pos = learner.learn(arm, 0.0)
        out.append(
            {
                "experiment_id": exp.id,
                "idempotency_key": f"{SETTLE_PREFIX}{decision_id}",
                "request_hash": "",
                "decision_id": decision_id,
                "arm": arm,
                "kind": "none",
                "value": 0.0,
                "item": None,
                "status": "learned",
                "late": False,
                "orphan": False,
                "learned": True,
                "normalized": 0.0,
                "update_pos": pos,
                "duplicates": 0,
                "created_at": now,
            }
        )
    return out


def request_hash(item: RewardCreate) -> str:
    body = {
        "decision_id": item.decision_id,
        "kind": item.kind,
        "value": item.value,
        "item": item.item,
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


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
    items: Sequence[tuple[str, RewardCreate]],
    cache: policies.PolicyCache,
    now: dt.datetime | None = None,
) -> tuple[list[RewardOut], int]:
    """Store and learn ``items`` (idempotency key, reward) in one locked transaction.

    Returns one result per item, in order, and the policy version afterwards. Raises
    :class:`Invalid` (nothing stored) when a key is reused with another body or a value is
    out of range; unknown decisions are stored as orphans (the single endpoint answers 404).
    """
    now = now or utcnow()
    exp, state = _lock(session, key)
    learner = _Learner(session, exp, state, cache)
    definition: dict[str, float] = exp.reward_definition
    scale = learner.scale

    keys = list(dict.fromkeys(k for k, _ in items))
    reserved = [k for k in keys if k.startswith(SETTLE_PREFIX)]
    if reserved:
        raise Invalid(
            f"idempotency keys starting with {SETTLE_PREFIX!r} are reserved: {reserved[0]!r}"
        )
    existing: dict[str, Reward] = {}
    for i in range(0, len(keys), _CHUNK):
        chunk = keys[i : i + _CHUNK]
        for found_reward in session.scalars(
            select(Reward).where(Reward.experiment_id == exp.id, Reward.idempotency_key.in_(chunk))
        ):
            existing[found_reward.idempotency_key] = found_reward

    hashes = [request_hash(item) for _, item in items]
    first_in_batch: dict[str, int] = {}
    conflicts: list[str] = []
    new: list[int] = []  # indices of items to insert
    for i, ((k, _), h) in enumerate(zip(items, hashes, strict=True)):
        if k in existing:
            if existing[k].request_hash != h:
                conflicts.append(k)
        elif k in first_in_batch:
            if hashes[first_in_batch[k]] != h:
                conflicts.append(k)
        else:
            first_in_batch[k] = i
            new.append(i)
    if conflicts:
        shown = ", ".join(repr(c) for c in conflicts[:5])
        more = f" and {len(conflicts) - 5} more" if len(conflicts) > 5 else ""
        raise Invalid(
            f"Idempotency key reused with a different body: {shown}{more}. A retry must "
            "repeat the first request exactly; use a new key for a new reward."
        )

    decision_ids = list({items[i][1].decision_id for i in new})
    decisions: dict[str, tuple[int, dt.datetime, bool]] = {}
    for j in range(0, len(decision_ids), _CHUNK):
        chunk = decision_ids[j : j + _CHUNK]
        for did, arm, created, fb in session.execute(
            select(Decision.id, Decision.arm, Decision.created_at, Decision.fallback).where(
                Decision.experiment_id == exp.id, Decision.id.in_(chunk)
            )
        ):
            decisions[did] = (arm, as_utc(created), fb)

    bounded = None
    rows = _settle(learner, now) if new else []
    window = exp.reward_window_s
    agg: dict[int, list[float]] = defaultdict(lambda: [0, 0, 0.0, 0, 0.0, 0.0])
    new_rows: list[dict[str, Any]] = []
    for i in new:
        k, item = items[i]
        weight = definition.get(item.kind)
        value = item.value if item.value is not None else (weight if weight is not None else 1.0)
        row: dict[str, Any] = {
            "experiment_id": exp.id,
            "idempotency_key": k,
            "request_hash": hashes[i],
            "decision_id": item.decision_id,
            "arm": None,
            "kind": item.kind,
            "value": float(value),
            "item": item.item,
            "status": "ignored",
            "late": False,
            "orphan": False,
            "learned": False,
            "normalized": None,
            "update_pos": None,
            "duplicates": 0,
            "created_at": now,
        }
        found = decisions.get(item.decision_id)
        if found is None:
            row.update(status="orphan", orphan=True)
            new_rows.append(row)
            continue
        arm, created, fallback = found
        row["arm"] = arm
        a = agg[arm]
        if value > 0:  # a click / conversion reported with value 0 means "none happened"
            a[0 if item.kind == "click" else 1] += 1
        late = window is not None and (now - created).total_seconds() > window
        row["late"] = late
        if weight is not None:
            if bounded is None:
                bounded = policies.is_bounded(learner.load())
            if bounded and not (0.0 <= value <= weight):
                raise Invalid(
                    f"reward value {value} for kind {item.kind!r} is outside [0, {weight}] "
                    f"set by the experiment's reward definition (decision {item.decision_id})"
                )
            policies.check_reward(learner.load(), value / scale, f"reward value {value}")
        if weight is None or fallback or exp.status == "stopped":
            pass  # stored, counted, not learned
        elif late and not exp.learn_late:
            row["status"] = "late"
        else:
            norm = value / scale
            row.update(
                status="learned", learned=True, normalized=norm, update_pos=learner.learn(arm, norm)
            )
            a[2] += value
            a[3] += 1
            a[4] += norm
            a[5] += norm * norm
        new_rows.append(row)
    for zero in rows:  # implicit zeros of settled decisions
        agg[zero["arm"]][3] += 1

    seq = learner.apply("rewards")
    out_rows = rows + new_rows
    for out_row in out_rows:
        out_row["update_seq"] = seq if out_row["learned"] else None
    id_of = _insert_rewards(session.connection(), out_rows)
    new_ids = [id_of[items[i][0]] for i in new]
    _bump_arm_stats(session.connection(), exp.id, agg)
    dup_keys = [k for k, _ in items if k in existing]
    if dup_keys:
        counts: dict[str, int] = defaultdict(int)
        for k in dup_keys:
            counts[k] += 1
        _add_duplicates(session.connection(), exp.id, counts)
    # in-batch repeats of a new key are duplicates too
    in_batch_dups: dict[str, int] = defaultdict(int)
    for i, (k, _) in enumerate(items):
        if k in first_in_batch and first_in_batch[k] != i:
            in_batch_dups[k] += 1

    results: list[RewardOut] = []
    new_pos = {i: n for n, i in enumerate(new)}
    for i, (k, _item) in enumerate(items):
        if k in existing:
            results.append(_replay(existing[k]))
            continue
        first = first_in_batch[k]
        row = new_rows[new_pos[first]]
        results.append(
            RewardOut(
                reward_id=new_ids[new_pos[first]],
                idempotency_key=k,
                decision_id=row["decision_id"],
                kind=row["kind"],
                value=row["value"],
                status=row["status"],
                replayed=first != i,
                policy_version=row["update_seq"],
            )
        )
    if in_batch_dups:
        _add_duplicates(session.connection(), exp.id, in_batch_dups)
    session.commit()
    learner.committed()
    return results, learner.state.version


_REWARD_COLUMNS = {  # column -> PostgreSQL array type, for the unnest() bulk insert
    "experiment_id": "bigint[]",
    "idempotency_key": "text[]",
    "request_hash": "text[]",
    "decision_id": "text[]",
    "arm": "integer[]",
    "kind": "text[]",
    "value": "float8[]",
    "item": "text[]",
    "status": "text[]",
    "late": "boolean[]",
    "orphan": "boolean[]",
    "learned": "boolean[]",
    "normalized": "float8[]",
    "update_seq": "bigint[]",
    "update_pos": "integer[]",
    "duplicates": "integer[]",
    "created_at": "timestamptz[]",
}
# Built from the constant mapping above only (no user input): column names and types.
_COLS = ", ".join(_REWARD_COLUMNS)
_ARRAYS = ", ".join(f"CAST(:{c} AS {t})" for c, t in _REWARD_COLUMNS.items())
_PG_INSERT_REWARDS = text(
    f"INSERT INTO rewards ({_COLS}) SELECT * FROM unnest({_ARRAYS}) "  # noqa: S608
    "RETURNING id, idempotency_key"
)


def _insert_rewards(conn: Connection, rows: list[dict[str, Any]]) -> dict[str, int]:
    """Bulk-insert reward rows; returns {idempotency key: id}.

    PostgreSQL: one ``INSERT ... SELECT FROM unnest(arrays)`` statement, one parameter per
    column whatever the batch size (a multi-row VALUES list costs the driver a lot of Python
    work per parameter). SQLite: executemany with RETURNING (batched multi-row INSERTs).
    Rows come back in any order, so they are matched by their (unique) key.
    """
    if not rows:
        return {}
    if conn.dialect.name == "postgresql":
        params = {c: [r[c] for r in rows] for c in _REWARD_COLUMNS}
        result = conn.execute(_PG_INSERT_REWARDS, params)
    else:
        t = Reward.__table__
        result = conn.execute(
            insert(t).returning(t.c.id, t.c.idempotency_key),  # type: ignore[arg-type]
            rows,
        )
    return {k: rid for rid, k in result}


def _add_duplicates(conn: Connection, experiment_id: int, counts: dict[str, int]) -> None:
    """Add ``counts[key]`` to the ``duplicates`` counter of each stored reward ``key``."""
    table = Reward.__table__
    conn.execute(
        update(table)  # type: ignore[arg-type]
        .where(
            table.c.experiment_id == experiment_id,
            table.c.idempotency_key == bindparam("k"),
        )
        .values(duplicates=table.c.duplicates + bindparam("n")),
        [{"k": k, "n": n} for k, n in counts.items()],
    )


def _bump_arm_stats(conn: Connection, experiment_id: int, agg: dict[int, list[float]]) -> None:
    if not agg:
        return
    t = ArmStat.__table__
    conn.execute(
        update(t)  # type: ignore[arg-type]
        .where(and_(t.c.experiment_id == experiment_id, t.c.arm == bindparam("a")))
        .values(
            clicks=t.c.clicks + bindparam("c"),
            conversions=t.c.conversions + bindparam("v"),
            raw_sum=t.c.raw_sum + bindparam("s"),
            n_learned=t.c.n_learned + bindparam("n"),
            reward_sum=t.c.reward_sum + bindparam("rs"),
            reward_sq_sum=t.c.reward_sq_sum + bindparam("rq"),
        ),
        [
            {
                "a": arm,
                "c": int(v[0]),
                "v": int(v[1]),
                "s": v[2],
                "n": int(v[3]),
                "rs": v[4],
                "rq": v[5],
            }
            for arm, v in sorted(agg.items())
        ],
    )


def settle(
    session: Session, key: str, cache: policies.PolicyCache, now: dt.datetime | None = None
) -> int:
    """Learn the zero reward of every decision whose window closed unrewarded."""
    now = now or utcnow()
    exp, state = _lock(session, key)
    learner = _Learner(session, exp, state, cache)
    rows = _settle(learner, now)
    seq = learner.apply("settle")
    agg: dict[int, list[float]] = defaultdict(lambda: [0, 0, 0.0, 0, 0.0, 0.0])
    for r in rows:
        r["update_seq"] = seq
        agg[r["arm"]][3] += 1
    if rows:
        _insert_rewards(session.connection(), rows)
        _bump_arm_stats(session.connection(), exp.id, agg)
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
    keys = session.scalars(
        select(Experiment.key).where(
            Experiment.status != "stopped", Experiment.reward_window_s.is_not(None)
        )
    ).all()
    session.rollback()
    return sum(settle(session, k, cache) for k in keys)


# =========================================================================== rebuild


@dataclass
class RebuildResult:
    experiment: str
    updates: int
    observations: int
    version: int
    state: dict[str, Any]
    live_state: dict[str, Any]
    allocation: list[float]

    @property
    def equal(self) -> bool:
        same = _canonical(self.state) == _canonical(self.live_state)
        return same and self.updates == self.version


def _canonical(d: dict[str, Any]) -> str:
    return json.dumps(d, sort_keys=True)


def rebuild(session: Session, key: str, write: bool = False) -> RebuildResult:
    """Recompute the policy from the stored decisions and rewards, in the logged order.

    Each learned reward's arm comes from its decision and its observation from its raw value
    divided by the reward definition's maximum (zero for a settled, unrewarded decision);
    rewards are grouped by ``update_seq`` and replayed with one ``update_batch`` per group,
    ordered by ``update_pos``, exactly as the live learners applied them.
    With ``write=True`` the rebuilt state replaces the live one (under the lock).
    """
    exp, state = _lock(session, key) if write else _get(session, key)
    policy = policies.build_policy(exp)
    scale = max(exp.reward_definition.values())
    q = (
        select(Reward.update_seq, Reward.kind, Reward.value, Decision.arm)
        .join(Decision, Decision.id == Reward.decision_id)
        .where(Reward.experiment_id == exp.id, Reward.learned)
        .order_by(Reward.update_seq, Reward.update_pos)
    )
    updates = observations = 0
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

    for seq, kind, value, arm in session.execute(q).yield_per(10_000):
        if seq != cur_seq:
            flush()
            cur_seq = seq
        arms.append(arm)
        rewards.append(0.0 if kind == "none" else value / scale)
        observations += 1
    flush()
    rebuilt = _jsonable(policy.state_dict())
    allocation = policies.allocation_of(policy)
    result = RebuildResult(
        key, updates, observations, state.version, rebuilt, state.state, allocation
    )
    if write:
        session.execute(
            update(PolicyState)
            .where(PolicyState.experiment_id == exp.id)
            .values(state=rebuilt, allocation=allocation, updated_at=utcnow())
        )
        session.commit()
    else:
        session.rollback()
    return result


# =========================================================================== read side


def allocation(session: Session, key: str) -> AllocationOut:
    exp, state = _get(session, key)
    return AllocationOut(
        experiment=key,
        policy_version=state.version,
        allocation=dict(zip(exp.arms, state.allocation, strict=True)),
        updated_at=as_utc(state.updated_at),
    )


def _decision_counts(session: Session, exp_id: int, n_arms: int) -> tuple[np.ndarray, int]:
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
    return counts, fallback


def experiment_stats(session: Session, key: str) -> StatsOut:
    exp, state = _get(session, key)
    n = len(exp.arms)
    counts, _ = _decision_counts(session, exp.id, n)
    rows = {
        s.arm: s for s in session.scalars(select(ArmStat).where(ArmStat.experiment_id == exp.id))
    }
    scale = max(exp.reward_definition.values())
    obs = np.array([rows[i].n_learned if i in rows else 0 for i in range(n)], dtype=float)
    sums = np.array([rows[i].reward_sum if i in rows else 0.0 for i in range(n)])
    sq = np.array([rows[i].reward_sq_sum if i in rows else 0.0 for i in range(n)])
    summary = stats.arm_summary(obs, sums, sq, scale, seed=exp.seed)
    arms = []
    for i, name in enumerate(exp.arms):
        s = rows.get(i)
        arms.append(
            {
                "arm": name,
                "decisions": int(counts[i]),
                "clicks": s.clicks if s else 0,
                "conversions": s.conversions if s else 0,
                "observations": int(obs[i]),
                "mean_reward": summary.mean[i],
                "ci95_low": summary.low[i],
                "ci95_high": summary.high[i],
                "prob_best": summary.prob_best[i],
                "expected_loss": summary.expected_loss[i],
                "weight": float(state.allocation[i]),
            }
        )
    return StatsOut.model_validate(
        {
            "experiment": key,
            "policy": exp.policy,
            "policy_version": state.version,
            "status": exp.status,
            "arms": arms,
        }
    )


def health(session: Session, key: str, now: dt.datetime | None = None) -> HealthOut:
    now = now or utcnow()
    exp, state = _get(session, key)
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
    for j in range(0, len(versions), _CHUNK):
        for seq, alloc in session.execute(
            select(PolicyUpdate.seq, PolicyUpdate.allocation).where(
                PolicyUpdate.experiment_id == exp.id, PolicyUpdate.seq.in_(versions[j : j + _CHUNK])
            )
        ):
            probs[seq] = alloc
    srm = stats.sample_ratio_test(
        [(by_version[v], np.asarray(probs[v], dtype=float)) for v in versions if v in probs], n
    )
    _, fallback = _decision_counts(session, exp.id, n)
    decisions = int(sum(int(c.sum()) for c in by_version.values()))

    counts = dict(
        session.execute(
            select(Reward.status, func.count())
            .where(Reward.experiment_id == exp.id, Reward.kind != "none")
            .group_by(Reward.status)
        ).all()
    )
    dups = session.scalar(
        select(func.coalesce(func.sum(Reward.duplicates), 0)).where(Reward.experiment_id == exp.id)
    )
    pending = 0
    if exp.reward_window_s is not None:
        low = state.settled_until or exp.created_at
        rewarded = exists().where(
            Reward.decision_id == Decision.id, Reward.experiment_id == exp.id, Reward.learned
        )
        pending = (
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
        pending_decisions=int(pending),
        rewards=int(sum(counts.values())),
        late_rewards=int(counts.get("late", 0)),
        orphan_rewards=int(counts.get("orphan", 0)),
        duplicate_rewards=int(dups or 0),
        ignored_rewards=int(counts.get("ignored", 0)),
        policy_version=state.version,
        last_policy_update=as_utc(last) if last else None,
    )


# =========================================================================== API keys


@dataclass(frozen=True)
class KeyInfo:
    id: int
    prefix: str
    scope: str
    name: str


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def create_api_key(session: Session, scope: str, name: str = "") -> tuple[str, KeyInfo]:
    """Create a key; the raw key is returned once and only its SHA-256 is stored.

    Keys carry 256 random bits, so a fast hash is enough (no password stretching needed).
    """
    if scope not in SCOPES:
        raise Invalid(f"scope must be one of {', '.join(SCOPES)}, got {scope!r}")
    prefix = secrets.token_hex(4)
    raw = f"bf_{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey(prefix=prefix, key_hash=hash_key(raw), scope=scope, name=name, created_at=utcnow())
    session.add(key)
    session.commit()
    return raw, KeyInfo(key.id, prefix, scope, name)


def revoke_api_key(session: Session, key_or_prefix: str) -> KeyInfo:
    raw = key_or_prefix.strip()
    cond = ApiKey.key_hash == hash_key(raw) if raw.startswith("bf_") else ApiKey.prefix == raw
    key = session.scalar(select(ApiKey).where(cond))
    if key is None:
        raise NotFound(f"no API key matches {raw[:11]!r}")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
    session.commit()
    return KeyInfo(key.id, key.prefix, key.scope, key.name)


def list_api_keys(session: Session) -> list[tuple[KeyInfo, bool]]:
    return [
        (KeyInfo(k.id, k.prefix, k.scope, k.name), k.revoked_at is not None)
        for k in session.scalars(select(ApiKey).order_by(ApiKey.id))
    ]


def verify_api_key(session: Session, raw: str) -> KeyInfo | None:
    key = session.scalar(
        select(ApiKey).where(ApiKey.key_hash == hash_key(raw), ApiKey.revoked_at.is_(None))
    )
    return KeyInfo(key.id, key.prefix, key.scope, key.name) if key else None


__all__ = [
    "SCOPES",
    "RebuildResult",
    "allocation",
    "create_api_key",
    "create_experiment",
    "decide",
    "experiment_stats",
    "get_experiment",
    "health",
    "list_experiments",
    "rebuild",
    "record_rewards",
    "revoke_api_key",
    "set_status",
    "settle",
    "verify_api_key",
]
