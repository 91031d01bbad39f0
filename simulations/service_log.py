"""Read the service's exported decision log (format 1, see ``service/export.py``) as data.

The export is a columnar table, one row per decision: ``action`` (arm index), ``propensity``
(its probability at the decision), ``prob_0..prob_{K-1}`` (the whole allocation),
``reward`` (the decision's normalised reward, 0 when none came) and descriptive columns.
This module reads it from a Parquet file or an Arrow table without importing the service.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from simulations.logged import LoggedFeedback

__all__ = ["REQUIRED_COLUMNS", "ServiceLog", "load_service_log"]

REQUIRED_COLUMNS = ("action", "propensity", "reward")


@dataclass(frozen=True, slots=True)
class ServiceLog:
    """An exported service log: the feedback, the arm names and the export's metadata."""

    feedback: LoggedFeedback
    arms: tuple[str, ...]
    metadata: dict[str, Any]


def _column(table: pa.Table, name: str) -> np.ndarray:
    col = table.column(name)
    if col.null_count:
        raise ValueError(f"{name} must have no missing values ({col.null_count} missing).")
    if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type)):
        raise ValueError(f"{name} must be numeric, got {col.type}.")
    return np.asarray(col.to_numpy(), dtype=np.float64)


def load_service_log(source: str | Path | pa.Table, *, drop_fallback: bool = False) -> ServiceLog:
    """Load an export (a Parquet path or an Arrow table) as :class:`ServiceLog`.

    ``drop_fallback`` removes decisions answered by the fallback arm of a paused or stopped
    experiment (their propensity is 1: they are valid logged data, but not the policy's).
    """
    table = source if isinstance(source, pa.Table) else pq.read_table(Path(source))
    missing = [c for c in REQUIRED_COLUMNS if c not in table.column_names]
    if missing:
        raise ValueError(
            f"the log lacks the column(s) {', '.join(missing)}; a service export has "
            f"{', '.join(REQUIRED_COLUMNS)} and prob_0..prob_K-1."
        )
    raw_meta = (table.schema.metadata or {}).get(b"bandit_fusion")
    meta: dict[str, Any] = json.loads(raw_meta) if raw_meta else {}
    if meta and int(meta.get("format", 0)) != 1:
        raise ValueError(f"format must be 1, got {meta.get('format')!r}.")
    if drop_fallback and "fallback" in table.column_names:
        keep = np.logical_not(np.asarray(table.column("fallback").to_numpy(zero_copy_only=False)))
        table = table.filter(pa.array(keep))
    prob_cols = sorted(
        (c for c in table.column_names if c.startswith("prob_")), key=lambda c: int(c[5:])
    )
    if not prob_cols:
        raise ValueError("the log has no prob_<arm> columns (the allocation at each decision).")
    if prob_cols != [f"prob_{j}" for j in range(len(prob_cols))]:
        raise ValueError(f"prob_ columns must be prob_0..prob_{len(prob_cols) - 1}.")
    if table.num_rows == 0:
        raise ValueError("the log has no decisions.")
    dist = np.stack([_column(table, c) for c in prob_cols], axis=1)
    arms = tuple(meta.get("arms", [str(j) for j in range(len(prob_cols))]))
    feedback = LoggedFeedback(
        actions=_column(table, "action"),
        rewards=_column(table, "reward"),
        propensities=_column(table, "propensity"),
        n_actions=len(prob_cols),
        logging_distribution=dist[:, :, None],
        name=str(meta.get("experiment", "service log")),
    )
    return ServiceLog(feedback, arms, meta)
