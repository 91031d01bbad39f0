"""SQLAlchemy 2 ORM models: the experiment store.

Tables
------
``experiments``      configuration (arms, policy and its parameters, reward definition, ...)
``policy_states``    one row per experiment: the serialised policy, its version and the
                     allocation it implies; the row every learner locks (see ``service.store``)
``policy_updates``   append-only log, one row per state change, numbered ``seq`` per experiment
``decisions``        every decision with the probability of every arm at that moment
``rewards``          every click / conversion (and the implicit zero of an unrewarded decision)
``arm_stats``        per-arm reward aggregates, kept up to date under the policy-state lock
``arm_series``       per policy update and arm, the cumulative learned aggregates after it
                     (what the dashboard's time series read; see :mod:`service.store.series`)
``api_keys``         hashed API keys, each with a scope and optionally a list of experiments

The API schemas live apart in :mod:`service.schemas`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Predicates of the partial indexes on rewards (the queries of service.store.insights use
# the same literal text, so that both planners match them).
REPORTED = "kind NOT IN ('none', 'decision')"
RETRIED = "duplicates > 0"

# BIGINT on PostgreSQL, INTEGER on SQLite (so that it stays the rowid alias / autoincrements).
BigInt = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {  # noqa: RUF012
        dict[str, Any]: JSON,
        list[Any]: JSON,
        dt.datetime: DateTime(timezone=True),
    }


class Experiment(Base):
    __tablename__ = "experiments"

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    arms: Mapped[list[Any]] = mapped_column(JSON)  # arm names, index = policy arm index
    policy: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)  # policy hyper-parameters
    seed: Mapped[int] = mapped_column(BigInt)
    mode: Mapped[str] = mapped_column(String(16), default="allocate")  # allocate | fuse
    reward_definition: Mapped[dict[str, Any]] = mapped_column(JSON)  # kind -> maximum value
    floors: Mapped[list[Any] | float | None] = mapped_column(JSON, nullable=True)
    caps: Mapped[list[Any] | float | None] = mapped_column(JSON, nullable=True)
    control_arm: Mapped[int | None] = mapped_column(Integer, nullable=True)
    control_share: Mapped[float] = mapped_column(Float, default=0.0)
    burn_in: Mapped[int] = mapped_column(Integer, default=0)
    reward_window_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    learn_late: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="active")  # active|paused|stopped
    when_inactive: Mapped[str] = mapped_column(String(16), default="fallback")  # or reject
    fallback_arm: Mapped[int] = mapped_column(Integer, default=0)
    # per arm, the name of the loaded recommender backing it (None: the arm only has a name)
    recommenders: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    fuser: Mapped[str | None] = mapped_column(String(32), nullable=True)  # fuse mode
    fuser_params: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # fuse mode: {max_weight, window, refresh, min_decisions} (None: no position correction)
    position_correction: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # indices of the arms retired over HTTP (None: none); they keep their index and history
    retired: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class PolicyState(Base):
    __tablename__ = "policy_states"

    experiment_id: Mapped[int] = mapped_column(
        BigInt, ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(BigInt, default=0)  # == seq of the last update
    state: Mapped[dict[str, Any]] = mapped_column(JSON)  # Policy.state_dict()
    allocation: Mapped[list[Any]] = mapped_column(JSON)  # Policy.allocation() at `version`
    settled_until: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    # position correction: {"version", "decisions", "relative"} of the last estimate
    examination: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class PolicyUpdate(Base):
    __tablename__ = "policy_updates"
    __table_args__ = (UniqueConstraint("experiment_id", "seq", name="uq_policy_updates_seq"),)

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    experiment_id: Mapped[int] = mapped_column(
        BigInt, ForeignKey("experiments.id", ondelete="CASCADE")
    )
    seq: Mapped[int] = mapped_column(BigInt)  # 0 = creation; the policy version afterwards
    kind: Mapped[str] = mapped_column(String(16))  # create | rewards | settle | arms
    n_rewards: Mapped[int] = mapped_column(Integer, default=0)
    # kind 'arms': {"action": "add" | "retire", "arm": index}; what the rebuild replays
    change: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    allocation: Mapped[list[Any]] = mapped_column(JSON)  # allocation after this update
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Decision(Base):
    __tablename__ = "decisions"
    __table_args__ = (
        Index("ix_decisions_experiment_created", "experiment_id", "created_at"),
        # covers the per-(version, arm) counts of /stats, /health and the dashboard
        Index(
            "ix_decisions_experiment_version_arm",
            "experiment_id",
            "policy_version",
            "arm",
            "fallback",
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # uuid4 hex
    experiment_id: Mapped[int] = mapped_column(
        BigInt, ForeignKey("experiments.id", ondelete="CASCADE")
    )
    unit_id: Mapped[str] = mapped_column(String(200))
    arm: Mapped[int] = mapped_column(Integer)
    probabilities: Mapped[list[Any]] = mapped_column(JSON)  # P(arm) for every arm
    policy_version: Mapped[int] = mapped_column(BigInt)
    seed: Mapped[int] = mapped_column(BigInt)  # the draw: rng(seed).random() vs cumsum(probs)
    fallback: Mapped[bool] = mapped_column(Boolean, default=False)  # paused/stopped answer
    context: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    served_items: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    # the list answered: [{item, position, arm, source_prob, propensity}, ...] (None: no items)
    items: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Reward(Base):
    __tablename__ = "rewards"
    __table_args__ = (
        UniqueConstraint("experiment_id", "idempotency_key", name="uq_rewards_idempotency"),
        Index("ix_rewards_decision", "decision_id"),
        Index("ix_rewards_experiment_seq", "experiment_id", "update_seq"),
        # partial: the reported rewards only (not the one-per-decision observation rows),
        # and the retried ones; /health counts them without reading the whole log
        Index(
            "ix_rewards_reported",
            "experiment_id",
            "status",
            sqlite_where=text(REPORTED),
            postgresql_where=text(REPORTED),
        ),
        Index(
            "ix_rewards_retried",
            "experiment_id",
            sqlite_where=text(RETRIED),
            postgresql_where=text(RETRIED),
        ),
    )

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    experiment_id: Mapped[int] = mapped_column(
        BigInt, ForeignKey("experiments.id", ondelete="CASCADE")
    )
    idempotency_key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))  # sha256 of the canonical body
    decision_id: Mapped[str] = mapped_column(String(64))  # as sent (no FK: orphans are kept)
    arm: Mapped[int | None] = mapped_column(Integer, nullable=True)  # None for an orphan
    kind: Mapped[str] = mapped_column(String(16))  # click | conversion | none (implicit zero)
    value: Mapped[float] = mapped_column(Float)  # raw value, as defined by the experiment
    item: Mapped[str | None] = mapped_column(String(200), nullable=True)
    position: Mapped[int | None] = mapped_column(Integer, nullable=True)  # slot credited
    status: Mapped[str] = mapped_column(String(16))  # learned|late|orphan|ignored|stopped
    late: Mapped[bool] = mapped_column(Boolean, default=False)
    orphan: Mapped[bool] = mapped_column(Boolean, default=False)
    learned: Mapped[bool] = mapped_column(Boolean, default=False)
    normalized: Mapped[float | None] = mapped_column(Float, nullable=True)  # what the policy saw
    update_seq: Mapped[int | None] = mapped_column(BigInt, nullable=True)  # policy_updates.seq
    update_pos: Mapped[int | None] = mapped_column(Integer, nullable=True)  # order inside it
    duplicates: Mapped[int] = mapped_column(Integer, default=0)  # retries answered from here
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ArmStat(Base):
    __tablename__ = "arm_stats"

    experiment_id: Mapped[int] = mapped_column(
        BigInt, ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True
    )
    arm: Mapped[int] = mapped_column(Integer, primary_key=True)
    clicks: Mapped[int] = mapped_column(BigInt, default=0)
    conversions: Mapped[int] = mapped_column(BigInt, default=0)
    raw_sum: Mapped[float] = mapped_column(Float, default=0.0)  # raw values of learned rewards
    n_learned: Mapped[int] = mapped_column(BigInt, default=0)  # observations given the policy
    reward_sum: Mapped[float] = mapped_column(Float, default=0.0)  # normalised
    reward_sq_sum: Mapped[float] = mapped_column(Float, default=0.0)


class ArmSeries(Base):
    """Cumulative learned observations of one arm after policy update ``seq`` (one row per
    arm and learning update; written with the update, regenerated by the rebuild)."""

    __tablename__ = "arm_series"

    experiment_id: Mapped[int] = mapped_column(
        BigInt, ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(BigInt, primary_key=True)  # policy_updates.seq
    arm: Mapped[int] = mapped_column(Integer, primary_key=True)
    n_learned: Mapped[int] = mapped_column(BigInt)
    reward_sum: Mapped[float] = mapped_column(Float)  # normalised
    reward_sq_sum: Mapped[float] = mapped_column(Float)
    #: probability of being best at this update; only at the updates
    #: :func:`service.store.series.keeps_prob_best` names (None elsewhere)
    prob_best: Mapped[float | None] = mapped_column(Float, nullable=True)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    prefix: Mapped[str] = mapped_column(String(16), unique=True)  # public part, for revocation
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex of the full key
    scope: Mapped[str] = mapped_column(String(16))  # admin | write | read
    name: Mapped[str] = mapped_column(String(200), default="")
    # experiment keys the key may act on; NULL: every experiment (a global key)
    experiments: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
