"""Load logs in the Open Bandit Dataset (OBD) layout as :class:`LoggedFeedback`.

The OBD (Saito et al., NeurIPS 2021 Datasets track; ZOZOTOWN, CC BY 4.0) ships one folder per
logging policy and campaign, ``<root>/<policy>/<campaign>/``, holding ``<campaign>.csv`` (one
row per impression and slot) and ``item_context.csv``. Columns read from ``<campaign>.csv``:

``item_id``            the item shown (0-based action index)
``position``           the slot, 1-based (stored 0-based)
``click``              the reward
``propensity_score``   the logging policy's probability of that item in that slot
``timestamp``          optional; rows are sorted by it, as Open Bandit Pipeline does
``user_feature_*``     optional, categorical: one-hot encoded (first level dropped)
``user-item_affinity_*``  optional, numeric

and from ``item_context.csv`` (optional): ``item_id``, ``item_feature_0`` (numeric) and
``item_feature_1..`` (categorical, one-hot encoded) as the action features. Any campaign in
this layout (``all``, ``men``, ``women``, or the full data set) loads unchanged.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from simulations.logged import LoggedFeedback

__all__ = ["REQUIRED_COLUMNS", "load_obd", "obd_log_file"]

REQUIRED_COLUMNS = ("item_id", "position", "click", "propensity_score")


def obd_log_file(path: str | Path) -> Path:
    """The log CSV of an OBD folder (``<dir>/<dir name>.csv``), or ``path`` itself if a file."""
    p = Path(path)
    if p.is_file():
        return p
    if not p.is_dir():
        raise ValueError(f"path {str(p)!r} is neither an OBD folder nor a CSV file.")
    named = p / f"{p.name}.csv"
    if named.is_file():
        return named
    candidates = sorted(c for c in p.glob("*.csv") if c.name != "item_context.csv")
    if len(candidates) != 1:
        raise ValueError(
            f"path {str(p)!r} must hold {p.name}.csv (the OBD layout) or exactly one log CSV, "
            f"found {[c.name for c in candidates]}."
        )
    return candidates[0]


def _numeric(frame: pd.DataFrame, column: str, csv: Path) -> np.ndarray:
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raw = frame[column].iloc[int(bad[0])]
        raise ValueError(f"{column} in {csv.name} must be numeric; row {int(bad[0])} has {raw!r}.")
    return values


def _action_context(path: Path, n_actions: int) -> np.ndarray | None:
    file = path / "item_context.csv"
    if not file.is_file():
        return None
    items = pd.read_csv(file, index_col=0)
    if "item_id" not in items.columns:
        raise ValueError(f"{file.name} must have an item_id column.")
    items = items.set_index("item_id").reindex(range(n_actions))
    if items.isna().any().any():
        raise ValueError(f"{file.name} must describe every item 0..{n_actions - 1}.")
    numeric = [c for c in items.columns if pd.api.types.is_numeric_dtype(items[c])]
    categorical = [c for c in items.columns if c not in numeric]
    parts = [items[numeric].to_numpy(dtype=np.float64)]
    if categorical:
        dummies = pd.get_dummies(items[categorical].astype(str), drop_first=True)
        parts.append(dummies.to_numpy(dtype=np.float64))
    return np.hstack(parts)


def load_obd(
    path: str | Path,
    *,
    n_actions: int | None = None,
    n_positions: int | None = None,
    features: bool = True,
) -> LoggedFeedback:
    """Read an OBD-format log (a ``<policy>/<campaign>/`` folder or its CSV).

    Parameters
    ----------
    path
        The campaign folder (holding ``<campaign>.csv``) or the CSV file.
    n_actions, n_positions
        Sizes of the action and slot sets; by default one more than the largest ``item_id``
        and ``position`` seen (give them when a log may miss the last item).
    features
        Build ``context`` and ``action_context`` from the feature columns (for reward
        models); ``False`` reads the four required columns only, which is faster.

    Raises
    ------
    ValueError
        Naming the column, when a required column is missing, a value is not numeric, a
        propensity is outside ``(0, 1]`` or a position is below 1.
    """
    csv = obd_log_file(path)
    header = pd.read_csv(csv, nrows=0).columns
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise ValueError(
            f"{csv.name} lacks the column(s) {', '.join(missing)}; an OBD log has "
            f"{', '.join(REQUIRED_COLUMNS)}."
        )
    if features:
        frame = pd.read_csv(csv)
        frame = frame.drop(columns=[c for c in frame.columns if c.startswith("Unnamed: ")])
    else:
        keep = [*REQUIRED_COLUMNS, *(["timestamp"] if "timestamp" in header else [])]
        frame = pd.read_csv(csv, usecols=keep)
    if "timestamp" in frame.columns:
        frame = frame.sort_values("timestamp", kind="stable")
    items = _numeric(frame, "item_id", csv)
    position = _numeric(frame, "position", csv)
    clicks = _numeric(frame, "click", csv)
    pscore = _numeric(frame, "propensity_score", csv)
    if np.any(items < 0) or np.any(items != np.round(items)):
        raise ValueError(f"item_id in {csv.name} must be integers from 0.")
    if np.any(position < 1) or np.any(position != np.round(position)):
        raise ValueError(f"position in {csv.name} must be integers from 1 (the first slot).")
    n_act = int(items.max()) + 1 if n_actions is None else int(n_actions)
    n_pos = int(position.max()) if n_positions is None else int(n_positions)
    context = action_context = None
    if features:
        users = [c for c in frame.columns if c.startswith("user_feature")]
        affinity = [c for c in frame.columns if c.startswith("user-item_affinity")]
        parts = []
        if users:
            dummies = pd.get_dummies(frame[users].astype(str), drop_first=True)
            parts.append(dummies.to_numpy(dtype=np.float64))
        if affinity:
            parts.append(frame[affinity].to_numpy(dtype=np.float64))
        context = np.hstack(parts) if parts else None
        action_context = _action_context(csv.parent, n_act)
    try:
        return LoggedFeedback(
            actions=items,
            rewards=clicks,
            propensities=pscore,
            n_actions=n_act,
            positions=position - 1,
            n_positions=n_pos,
            context=context,
            action_context=action_context,
            name=f"{csv.parent.parent.name}/{csv.parent.name}",
        )
    except ValueError as err:
        names = {"actions": "item_id", "rewards": "click", "propensities": "propensity_score"}
        message = str(err)
        for field_name, column in names.items():
            if message.startswith(field_name):
                message = f"{column} (in {csv.name}): {message}"
        raise ValueError(message) from None
