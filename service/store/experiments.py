"""Experiments: create, list, read and change status (``/v1/experiments``)."""

from __future__ import annotations

import secrets
from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service import policies
from service.errors import Conflict, Invalid
from service.models import ArmStat, Experiment, PolicyState, PolicyUpdate, utcnow
from service.schemas import ExperimentCreate, ExperimentOut
from service.store.common import as_utc, jsonable, load


def create_experiment(
    session: Session, spec: ExperimentCreate, models: Collection[str] = ()
) -> ExperimentOut:
    """Validate ``spec`` by building its policy, then store the experiment at version 0.

    ``models`` are the names of the loaded recommenders. Raises
    :class:`~service.errors.Invalid` for a policy that cannot be built, a recommender that
    is not loaded or an unknown fuser, and :class:`~service.errors.Conflict` when the key
    is taken; nothing is stored then.
    """
    arms = list(spec.arms)
    recommenders = _recommenders(spec, arms, models)
    fuser, fuser_params = _fuser(spec)
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
        params=dict(policy.params) if policy.params else dict(spec.params),
        seed=seed,
        mode=spec.mode,
        reward_definition={k: float(v) for k, v in spec.reward.items()},
        # stored as given: a scalar floor or cap also binds arms added later
        floors=_as_stored(spec.floors),
        caps=_as_stored(spec.caps),
        control_arm=control,
        control_share=spec.control_share,
        burn_in=spec.burn_in,
        reward_window_s=spec.reward_window_s,
        learn_late=spec.learn_late,
        status="active",
        when_inactive=spec.when_inactive,
        fallback_arm=fallback,
        recommenders=recommenders,
        fuser=fuser,
        fuser_params=fuser_params,
        position_correction=(
            spec.position_correction.model_dump() if spec.position_correction else None
        ),
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
        state=jsonable(policy.state_dict()),
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


def _as_stored(v: float | list[float] | None) -> float | list[float] | None:
    if v is None:
        return None
    return [float(x) for x in v] if isinstance(v, list) else float(v)


def _recommenders(
    spec: ExperimentCreate, arms: list[str], models: Collection[str]
) -> list[str | None] | None:
    if not spec.recommenders:
        return None
    missing = sorted({m for m in spec.recommenders.values() if m not in models})
    if missing:
        loaded = ", ".join(sorted(models)) or "none (start the service with a models directory)"
        raise Invalid(
            f"recommenders refers to recommender(s) not loaded: {', '.join(missing)}; "
            f"loaded: {loaded}"
        )
    return [spec.recommenders.get(a) for a in arms]


# Fusers whose top slot's source is drawn from the weights: the logged arm and its
# probability keep the sample-ratio check and off-policy estimates valid.
DRAWN_FUSERS = ("slot-mix", "team-draft")
# Deterministic fusers: no draw to check; a click is credited to the arms by their share of
# the item's fused score (fractional credit, see service.store.learning.observe_slots).
SCORED_FUSERS = ("weighted-score", "weighted-rrf")
SERVED_FUSERS = DRAWN_FUSERS + SCORED_FUSERS


# upper bounds that keep one decision's fusing cheap (n_samples replays per decision)
_PARAM_LIMITS = {"n_samples": 1000, "c": 1e6}


def _fuser(spec: ExperimentCreate) -> tuple[str | None, dict[str, Any] | None]:
    """The fuser's name and parameters, validated by building it (:class:`Invalid` if not)."""
    if spec.mode != "fuse":
        return None, None
    name = spec.fuser or "slot-mix"
    if name not in SERVED_FUSERS:
        raise Invalid(f"fuser {name!r} cannot be served; choose one of: {', '.join(SERVED_FUSERS)}")
    params = dict(spec.fuser_params or {})
    if "max_per_category" in params or "k" in params:
        raise Invalid(
            "fuser_params may not set max_per_category (the service has no item categories) "
            "nor k (each decision's k sets it)"
        )
    for field, high in _PARAM_LIMITS.items():
        v = params.get(field)
        if v is not None and not (
            isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= high
        ):
            raise Invalid(f"fuser_params[{field!r}] must be a number in [0, {high:g}], got {v!r}")
    from bandit import make_fuser

    try:
        make_fuser(name, k=1, **params)
    except (ValueError, TypeError) as err:
        raise Invalid(f"invalid fuser_params for {name!r}: {err}") from err
    return name, (params or None)


def _per_arm(v: float | list[float] | None, n: int) -> list[float] | None:
    if v is None:
        return None
    return [float(x) for x in v] if isinstance(v, list) else [float(v)] * n


def experiment_out(exp: Experiment, version: int) -> ExperimentOut:
    """The API view of a stored experiment at policy ``version``."""
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
        floors=_per_arm(exp.floors, len(arms)),
        caps=_per_arm(exp.caps, len(arms)),
        control_arm=arms[exp.control_arm] if exp.control_arm is not None else None,
        control_share=exp.control_share,
        burn_in=exp.burn_in,
        reward_window_s=exp.reward_window_s,
        learn_late=exp.learn_late,
        status=exp.status,  # type: ignore[arg-type]
        when_inactive=exp.when_inactive,
        fallback_arm=arms[exp.fallback_arm],
        recommenders=(
            {a: r for a, r in zip(arms, exp.recommenders, strict=True) if r is not None}
            if exp.recommenders
            else None
        ),
        fuser=exp.fuser,
        fuser_params=exp.fuser_params,
        position_correction=exp.position_correction,
        retired=[arms[i] for i in exp.retired or []],
        policy_version=version,
        created_at=as_utc(exp.created_at),
        updated_at=as_utc(exp.updated_at),
    )


def get_experiment(session: Session, key: str) -> ExperimentOut:
    exp, state = load(session, key)
    return experiment_out(exp, state.version)


def list_experiments(
    session: Session,
    limit: int,
    offset: int,
    status: str | None = None,
    only: Sequence[str] | None = None,
) -> tuple[list[ExperimentOut], int]:
    """One page of experiments in creation order, and the total matching ``status`` (and
    among the keys ``only``, when given)."""
    cond = [Experiment.status == status] if status else []
    if only is not None:
        cond.append(Experiment.key.in_(list(only)))
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
    """Apply ``action`` (pause, resume, stop); repeating one is a no-op, a stop is final."""
    allowed, target = _TRANSITIONS[action]
    exp, state = load(session, key)
    if exp.status not in allowed:
        raise Conflict(f"experiment {key!r} is {exp.status} and cannot be {action}d")
    if exp.status != target:
        exp.status = target
        exp.updated_at = utcnow()
    session.commit()
    return experiment_out(exp, state.version)
