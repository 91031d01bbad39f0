"""Export an experiment's decision log, joined with its rewards, as a columnar table.

This is the documented hand-off between the service and offline evaluation: ``simulations``
reads the table as plain data (:func:`simulations.service_log.load_service_log`) and never
imports ``service``. One row per decision, in the order the decisions were made
(``created_at``, then ``decision_id``). Format version 1, as an Apache Arrow table (written as
Parquet by :func:`write_export`):

==================  ===========  ==========================================================
column              type         meaning
==================  ===========  ==========================================================
``decision_id``     string       the decision's id
``created_at``      timestamp    when it was made (UTC)
``unit_id``         string       user / session / request it was made for
``action``          int64        index of the arm served
``arm``             string       name of the arm served
``propensity``      float64      probability the policy gave that arm (``prob_<action>``)
``prob_0..K-1``     float64      probability of every arm at the decision
``policy_version``  int64        version of the policy state that decided
``fallback``        bool         answered by the fallback arm (paused / stopped experiment)
``served_items``    string       the items the caller served, as a JSON list (or null)
``items``           string       the list the service answered (decisions with items), as JSON:
                                 ``[{item, position, arm, source_prob, propensity}, ...]``
``reward``          float64      the decision's reward as the policy learns it: the largest
                                 value among its rewards divided by ``scale``, the largest
                                 value of the reward definition; 0 when none was reported
``reward_raw``      float64      the largest raw reward value
``n_rewards``       int64        rewards counted (kinds in the reward definition; late ones
                                 included, orphans and other kinds excluded)
==================  ===========  ==========================================================

The schema metadata key ``bandit_fusion`` holds JSON with ``format`` (1), ``experiment``,
``arms``, ``policy``, ``params`` and ``reward_definition``.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Engine, create_engine, func, select
from sqlalchemy.orm import Session

from service.errors import Invalid, NotFound
from service.models import Decision, Experiment, Reward

__all__ = ["EXPORT_FORMAT", "export_log", "export_log_from_url", "write_export"]

EXPORT_FORMAT = 1


def export_log(
    session: Session,
    key: str,
    *,
    newest: int | None = None,
    made_before: dt.datetime | None = None,
) -> pa.Table:
    """The decision log of experiment ``key`` with each decision's rewards (see module doc).

    ``made_before`` keeps the decisions made before that instant (for example those whose
    reward window has closed); ``newest`` keeps the last ``newest`` of them (still in the
    order they were made). Raises :class:`service.errors.NotFound` for an unknown experiment.
    """
    exp = session.scalar(select(Experiment).where(Experiment.key == key))
    if exp is None:
        raise NotFound(f"no experiment with key {key!r}")
    if exp.mode == "fuse":
        raise Invalid(
            f"experiment {key!r} fuses lists: its log (one observation per shown slot) has no "
            "export yet; only 'allocate' experiments can be exported"
        )
    arms: list[str] = list(exp.arms)
    definition: dict[str, float] = dict(exp.reward_definition)
    scale = max(definition.values())
    rewards = (
        select(
            Reward.decision_id.label("decision_id"),
            func.max(Reward.value).label("raw"),
            func.count(Reward.id).label("n"),
        )
        .where(
            Reward.experiment_id == exp.id,
            Reward.orphan.is_(False),
            Reward.kind.in_(list(definition)),
        )
        .group_by(Reward.decision_id)
        .subquery()
    )
    query = (
        select(
            Decision.id,
            Decision.created_at,
            Decision.unit_id,
            Decision.arm,
            Decision.probabilities,
            Decision.policy_version,
            Decision.fallback,
            Decision.served_items,
            rewards.c.raw,
            rewards.c.n,
            Decision.items,
        )
        .outerjoin(rewards, rewards.c.decision_id == Decision.id)
        .where(Decision.experiment_id == exp.id)
    )
    if made_before is not None:
        query = query.where(Decision.created_at < made_before)
    if newest is None:
        rows = session.execute(query.order_by(Decision.created_at, Decision.id)).all()
    else:
        last = query.order_by(Decision.created_at.desc(), Decision.id.desc()).limit(newest)
        rows = session.execute(last).all()[::-1]
    n, k = len(rows), len(arms)
    probs = np.zeros((n, k))
    for i, row in enumerate(rows):
        probs[i, : len(row[4])] = row[4]  # arms added after the decision had 0
    action = np.fromiter((r[3] for r in rows), dtype=np.int64, count=n)
    raw = np.fromiter((r[8] or 0.0 for r in rows), dtype=np.float64, count=n)
    columns: dict[str, Any] = {
        "decision_id": pa.array([r[0] for r in rows], pa.string()),
        "created_at": pa.array([r[1] for r in rows], pa.timestamp("us", tz="UTC")),
        "unit_id": pa.array([r[2] for r in rows], pa.string()),
        "action": pa.array(action, pa.int64()),
        "arm": pa.array([arms[a] for a in action.tolist()], pa.string()),
        "propensity": pa.array(probs[np.arange(n), action] if n else np.zeros(0), pa.float64()),
    }
    for j in range(k):
        columns[f"prob_{j}"] = pa.array(probs[:, j], pa.float64())
    columns.update(
        {
            "policy_version": pa.array([r[5] for r in rows], pa.int64()),
            "fallback": pa.array([bool(r[6]) for r in rows], pa.bool_()),
            "served_items": pa.array(
                [None if r[7] is None else json.dumps(r[7]) for r in rows], pa.string()
            ),
            "items": pa.array(
                [None if r[10] is None else json.dumps(r[10]) for r in rows], pa.string()
            ),
            "reward": pa.array(raw / scale, pa.float64()),
            "reward_raw": pa.array(raw, pa.float64()),
            "n_rewards": pa.array([int(r[9] or 0) for r in rows], pa.int64()),
        }
    )
    meta = {
        "format": EXPORT_FORMAT,
        "experiment": exp.key,
        "arms": arms,
        "policy": exp.policy,
        "params": exp.params,
        "reward_definition": definition,
    }
    return pa.table(columns).replace_schema_metadata({"bandit_fusion": json.dumps(meta)})


def export_log_from_url(url: str, key: str, engine: Engine | None = None) -> pa.Table:
    """:func:`export_log` on the database at SQLAlchemy ``url`` (read only)."""
    own = engine is None
    eng = engine if engine is not None else create_engine(url)
    try:
        with Session(eng) as session:
            return export_log(session, key)
    finally:
        if own:
            eng.dispose()


def write_export(table: pa.Table, path: str | Path) -> Path:
    """Write an exported log as Parquet (schema metadata kept); returns the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, out)
    return out
