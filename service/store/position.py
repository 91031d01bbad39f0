"""Optional position correction of a fuse experiment's slot observations.

The rule
--------
With ``position_correction`` set on a fuse experiment, a slot's value at position ``j`` is
learned as ``value_j / scale * w_j / max(w)`` (:func:`bandit.fusion.slot_observations` with
an examination), where

* ``w_j = min(1 / theta_j, max_weight)``: ``theta_j`` is the examination probability of
  position ``j`` relative to the top slot, estimated by :func:`bandit.fusion.position.
  estimate_examination` (position-based model, EM) from the slot clicks of the most recent
  ``window`` learned fused decisions (those with the longest list among them; a slot counts
  as clicked when its learned value is above 0), so that a click low in the list, where
  few users look, counts more;
* the clip at ``max_weight`` keeps a rarely examined position from blowing one click up;
  dividing by ``max(w)`` over the list keeps every observation in [0, 1] (the same factor
  for every arm, so the order of the arms' means is unchanged);
* positions beyond those estimated take the last estimated position's ``theta``;
* before ``min_decisions`` learned fused decisions there is no estimate and no correction.

The estimate is refreshed when the policy version has moved ``refresh`` versions past the
last one, inside the locked learning transaction, and stored in
``policy_states.examination`` with the version it was made at; every learned row keeps what
the policy saw (``rewards.normalized``), which is what the rebuild replays, so the rebuild
still equals the live policy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from bandit.fusion.position import Examination, estimate_examination
from service.models import Experiment, PolicyState, Reward

OBSERVATION = "decision"  # (service.store.learning.OBSERVATION: the observation rows' kind)


def current_examination(
    session: Session, exp: Experiment, state: PolicyState
) -> tuple[Examination | None, float]:
    """The examination to correct with now, and ``max_weight``; (None, 1) when the
    experiment has no position correction or too few learned decisions yet. Refreshes the
    stored estimate per the rule above (the caller holds the policy-state lock)."""
    cfg: Mapping[str, Any] | None = exp.position_correction
    if exp.mode != "fuse" or not cfg:
        return None, 1.0
    stored = state.examination
    if stored is None or state.version - int(stored["version"]) >= int(cfg["refresh"]):
        fresh = _estimate(session, exp.id, int(cfg["window"]), int(cfg["min_decisions"]))
        if fresh is not None:
            stored = {"version": state.version, **fresh}
            state.examination = stored
            session.execute(
                update(PolicyState)
                .where(PolicyState.experiment_id == exp.id)
                .values(examination=stored)
            )
    if stored is None:
        return None, 1.0
    relative = np.asarray(stored["relative"], dtype=np.float64)
    return Examination(relative, 0, True), float(cfg["max_weight"])


def covering(examination: Examination, k: int) -> Examination:
    """``examination`` over at least ``k`` positions (later ones take the last estimate)."""
    rel = examination.relative
    if rel.size >= k:
        return examination
    grown = np.concatenate([rel, np.full(k - rel.size, rel[-1])])
    return Examination(grown, examination.n_iter, examination.converged)


def _estimate(
    session: Session, experiment_id: int, window: int, min_decisions: int
) -> dict[str, Any] | None:
    """EM on the slot clicks of the ``window`` most recently learned fused decisions."""
    learned = (
        Reward.experiment_id == experiment_id,
        Reward.kind == OBSERVATION,
        Reward.learned,
        Reward.position.is_not(None),
    )
    recent = (
        select(Reward.decision_id)
        .where(*learned)
        .group_by(Reward.decision_id)
        .order_by(func.max(Reward.update_seq).desc(), Reward.decision_id)
        .limit(window)
        .subquery()
    )
    rows = session.execute(
        select(Reward.decision_id, Reward.position, func.min(Reward.item), func.max(Reward.value))
        .where(*learned, Reward.decision_id.in_(select(recent.c.decision_id)))
        .group_by(Reward.decision_id, Reward.position)
    ).all()
    lists: dict[str, dict[int, tuple[int, float]]] = {}
    for did, pos, item, value in rows:
        if pos is not None and item is not None:
            lists.setdefault(did, {})[int(pos)] = (int(item), float(value or 0.0))
    if len(lists) < min_decisions:
        return None
    k = max(len(slots) for slots in lists.values())
    full = [s for s in lists.values() if len(s) == k and set(s) == set(range(k))]
    if len(full) < min_decisions:
        return None
    items = np.array([[s[j][0] for j in range(k)] for s in full], dtype=np.int64)
    clicks = np.array([[float(s[j][1] > 0) for j in range(k)] for s in full])
    est = estimate_examination(items, clicks)
    return {"decisions": len(full), "relative": [float(x) for x in est.relative]}
