"""Arms added to or retired from a running experiment (``/v1/experiments/{key}/arms``).

Indices
-------
An experiment's arms keep their index for good: ``experiments.arms`` only grows (an added
arm is appended) and a retired arm stays in it, listed in ``experiments.retired``, so that
decisions, rewards and ``arm_stats`` rows keep naming the arm they were made for.

The policy, however, only holds the **active** arms, in experiment order: an added arm is
the policy's :meth:`~bandit.base.Policy.add_arm` (no observations, so it is explored at
once; a floor or cap given as one number binds it, a per-arm list gives it none), a retired
arm its :meth:`~bandit.base.Policy.remove_arm`. Policy index ``j`` is the experiment arm
``active_arms(...)[j]``; the stored allocation is the policy's, spread over every experiment
arm with 0 for the retired ones (:func:`expand`), so decisions never draw a retired arm and a
fused list never takes items from it.

Each change is one locked policy update (``policy_updates`` row of kind ``arms`` whose
``change`` is ``{"action": "add" | "retire", "arm": index}``); the rebuild replays these
changes at their place among the reward updates (:func:`apply_change`, the one
implementation both use), so it still ends in the live state.

A retired arm keeps its history: its decisions, rewards and statistics stay, and rewards that
still arrive for its earlier decisions are stored with status ``retired`` (counted, never
learned).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import insert, update
from sqlalchemy.orm import Session

from bandit import Policy
from service import policies
from service.batching import Ranker
from service.errors import Conflict, Invalid, NotFound
from service.models import ArmStat, Experiment, PolicyState, PolicyUpdate, utcnow
from service.recommenders import ItemRequest, Recommender
from service.schemas import ArmCreate, ExperimentOut
from service.serving import Served, serve_fuse
from service.store.common import lock
from service.store.experiments import experiment_out

ARMS_UPDATE = "arms"  # policy_updates.kind of an arm change


def active_arms(n_arms: int, retired: Sequence[int] | None) -> list[int]:
    """The experiment indices of the arms the policy holds, in order (policy index = list
    position)."""
    gone = set(retired or ())
    return [a for a in range(n_arms) if a not in gone]


def expand(allocation: Sequence[float], active: Sequence[int], n_arms: int) -> list[float]:
    """The policy's allocation over its active arms as one probability per experiment arm
    (0 for a retired arm)."""
    out = [0.0] * n_arms
    for j, a in enumerate(active):
        out[a] = float(allocation[j])
    return out


def serving_arms(
    recommenders: Sequence[str | None], retired: Sequence[int] | None
) -> list[str | None]:
    """Each arm's recommender, None for a retired arm (never scored, even if unloaded)."""
    gone = set(retired or ())
    return [None if a in gone else r for a, r in enumerate(recommenders)]


def fuse_active(
    recs: Sequence[Recommender | None],
    fuser_name: str,
    probabilities: Sequence[float],
    seed: int,
    unit_id: str,
    req: ItemRequest,
    max_k: int,
    params: dict[str, Any] | None = None,
    ranker: Ranker | None = None,
) -> Served:
    """:func:`service.serving.serve_fuse` over the arms with a recommender (the retired
    ones have none here, and no weight), its sources and credit given back as experiment
    indices."""
    live = [a for a, r in enumerate(recs) if r is not None]
    served = serve_fuse(
        [recs[a] for a in live],
        fuser_name,
        [probabilities[a] for a in live],
        seed,
        unit_id,
        req,
        max_k,
        ranker=ranker,
        params=params,
    )
    items = [
        replace(
            i,
            arm=live[i.arm],
            credit=None if i.credit is None else [[live[int(a)], w] for a, w in i.credit],
        )
        for i in served.items
    ]
    return Served(items[0].arm if items else live[served.arm], items)


def apply_change(policy: Policy, active: list[int], change: dict[str, Any]) -> None:
    """Apply one logged arm change to ``policy`` and to its ``active`` list (in place).

    Raises ``ValueError`` (nothing changed) when the policy refuses it: an added arm's floor
    or a removed arm's caps would make the controls infeasible, or no arm would be left.
    """
    arm = int(change["arm"])
    if change["action"] == "add":
        policy.add_arm()
        active.append(arm)
    elif change["action"] == "retire":
        policy.remove_arm(active.index(arm))
        active.remove(arm)
    else:  # never stored: the two actions above are the only ones written
        raise ValueError(f"unknown arm change {change['action']!r}")


def initial_arm_count(n_arms: int, changes: Sequence[dict[str, Any]]) -> int:
    """How many arms the experiment was created with (arms are only ever appended)."""
    return n_arms - sum(1 for c in changes if c["action"] == "add")


def add_arm(
    session: Session,
    key: str,
    body: ArmCreate,
    models: Collection[str],
    cache: policies.PolicyCache,
) -> ExperimentOut:
    """Append the arm ``body.name`` to experiment ``key``, backed by ``body.recommender``.

    Raises :class:`Invalid` for a recommender that is not loaded, a fuse experiment's arm
    without one, or a floor the controls cannot take; :class:`Conflict` for a name already
    used (retired arms included) or a stopped experiment. Nothing is stored then.
    """
    exp, state = lock(session, key)
    _check_open(exp)
    if body.name in exp.arms:
        raise Conflict(f"experiment {key!r} already has an arm named {body.name!r}")
    if body.recommender is not None and body.recommender not in models:
        loaded = ", ".join(sorted(models)) or "none (start the service with a models directory)"
        raise Invalid(f"recommender {body.recommender!r} is not loaded; loaded: {loaded}")
    if exp.mode == "fuse" and body.recommender is None:
        raise Invalid("mode 'fuse' needs a recommender for every arm: set 'recommender'")
    index = len(exp.arms)
    policy = _change(session, exp, state, cache, {"action": "add", "arm": index})
    exp.arms = [*exp.arms, body.name]
    if body.recommender is not None or exp.recommenders:
        exp.recommenders = [*(exp.recommenders or [None] * index), body.recommender]
    # per-arm lists grow as the policy's controls do: no floor, no cap for the new arm
    if isinstance(exp.floors, list):
        exp.floors = [*exp.floors, 0.0]
    if isinstance(exp.caps, list):
        exp.caps = [*exp.caps, 1.0]
    exp.updated_at = utcnow()
    session.add(ArmStat(experiment_id=exp.id, arm=index))
    session.commit()
    cache.put(exp.id, state.version, policy)
    return experiment_out(exp, state.version)


def retire_arm(session: Session, key: str, name: str, cache: policies.PolicyCache) -> ExperimentOut:
    """Retire the arm ``name`` of experiment ``key``: it gets no more traffic.

    A retired fallback arm hands that role to the control arm, else to the first active arm.
    Raises :class:`NotFound` for an unknown arm, :class:`Conflict` for an arm already
    retired or a stopped experiment, :class:`Invalid` for the last active arm, the control
    arm, or caps the remaining arms cannot satisfy. Nothing is stored then.
    """
    exp, state = lock(session, key)
    _check_open(exp)
    if name not in exp.arms:
        raise NotFound(f"experiment {key!r} has no arm named {name!r}")
    arm = exp.arms.index(name)
    retired = list(exp.retired or [])
    if arm in retired:
        raise Conflict(f"arm {name!r} of experiment {key!r} is already retired")
    active = active_arms(len(exp.arms), retired)
    if len(active) == 1:
        raise Invalid(f"arm {name!r} is the last active arm of {key!r}; it cannot be retired")
    if exp.control_arm == arm:
        raise Invalid(f"arm {name!r} is the control arm of {key!r}; it cannot be retired")
    policy = _change(session, exp, state, cache, {"action": "retire", "arm": arm})
    exp.retired = sorted([*retired, arm])
    if exp.fallback_arm == arm:
        rest = active_arms(len(exp.arms), exp.retired)
        exp.fallback_arm = exp.control_arm if exp.control_arm is not None else rest[0]
    exp.updated_at = utcnow()
    session.commit()
    cache.put(exp.id, state.version, policy)
    return experiment_out(exp, state.version)


def _check_open(exp: Experiment) -> None:
    if exp.status == "stopped":
        raise Conflict(f"experiment {exp.key!r} is stopped; its arms cannot change")


def _change(
    session: Session,
    exp: Experiment,
    state: PolicyState,
    cache: policies.PolicyCache,
    change: dict[str, Any],
) -> Policy:
    """Apply ``change`` to the locked policy and write it as the next policy version;
    returns the changed policy (for the cache, once committed)."""
    policy = cache.take(exp.id, state.version) or policies.restore(state.state)
    active = active_arms(len(exp.arms), exp.retired)
    try:
        apply_change(policy, active, change)
        allocation, new_state = policies.checked_result(policy)
    except ValueError as err:
        raise Invalid(f"the policy cannot take this arm change: {err}") from err
    n_arms = len(exp.arms) + (1 if change["action"] == "add" else 0)
    spread = expand(allocation, active, n_arms)
    seq = state.version + 1
    now = utcnow()
    session.execute(
        update(PolicyState)
        .where(PolicyState.experiment_id == exp.id)
        .values(version=seq, state=new_state, allocation=spread, updated_at=now)
    )
    session.execute(
        insert(PolicyUpdate).values(
            experiment_id=exp.id,
            seq=seq,
            kind=ARMS_UPDATE,
            n_rewards=0,
            allocation=spread,
            change=change,
            created_at=now,
        )
    )
    state.version = seq
    return policy
