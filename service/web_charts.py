"""The experiment page's charts: their data as the page's JSON, and the time-series CSV.

Pure functions of :class:`service.store.dashboard.TimeSeries` (itself read from the
pre-aggregated ``arm_series`` with the math of :mod:`service.stats`), so the charts and the
CSV show the same numbers.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from service.store.dashboard import TimeSeries


def chart_data(ts: TimeSeries) -> dict[str, Any]:
    """What ``static/dashboard.js`` draws (embedded in the page as JSON)."""
    return {
        "arms": ts.arms,
        "times": [t.isoformat() for t in ts.times],
        "versions": ts.versions,
        "weights": ts.weights,
        "mean": ts.mean,
        "low": ts.low,
        "high": ts.high,
        "observations": ts.observations,
        "best_times": [t.isoformat() for t in ts.best_times],
        "best_versions": ts.best_versions,
        "prob_best": ts.prob_best,
        "days": ts.days,
        "daily_decisions": ts.daily_decisions,
    }


SERIES_COLUMNS = (
    "policy_version",
    "time",
    "arm",
    "weight",
    "observations",
    "mean_reward",
    "ci95_low",
    "ci95_high",
    "prob_best",
)


def series_csv(ts: TimeSeries) -> str:
    """One row per drawn policy update and arm (empty cell for an undefined value).

    ``prob_best`` is filled at the updates that stored it (and the current one). Arm names
    starting with ``= + - @`` get a leading ``'`` so a spreadsheet never runs them.
    """
    best = dict(zip(ts.best_versions, ts.prob_best, strict=True))
    names = ["'" + a if a[:1] in ("=", "+", "-", "@") else a for a in ts.arms]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(SERIES_COLUMNS)
    for t, v in enumerate(ts.versions):
        for j, arm in enumerate(names):
            p = best.get(v)
            cells = (
                v,
                ts.times[t].isoformat(),
                arm,
                ts.weights[t][j],
                ts.observations[t][j],
                ts.mean[t][j],
                ts.low[t][j],
                ts.high[t][j],
                p[j] if p is not None else None,
            )
            writer.writerow(["" if c is None else c for c in cells])
    return out.getvalue()
