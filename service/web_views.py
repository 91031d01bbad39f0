"""What the dashboard pages say in words: health verdicts, ages and the per-arm CSV.

Pure functions of the API's own answers (:class:`StatsOut`, :class:`HealthOut`), so the
pages show the same numbers as ``/stats`` and ``/health``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass

from service.schemas import HealthOut, StatsOut

#: An arm whose probability of being best reaches this gets the "winner" badge.
WINNER_PROB_BEST = 0.95


@dataclass(frozen=True)
class Verdict:
    """The health of an experiment in plain words; ``ok`` False when something needs a look."""

    ok: bool
    headline: str
    notes: list[str]


def health_verdict(h: HealthOut) -> Verdict:
    """Plain-words reading of ``/health``: problems first, then what is merely worth knowing."""
    problems: list[str] = []
    notes: list[str] = []
    if h.srm.mismatch:
        problems.append(
            "Traffic does not match the probabilities the policy logged (sample-ratio "
            f"mismatch, p = {h.srm.p_value:.2g}): check assignment and logging before "
            "trusting the results."
        )
    if h.background_error:
        problems.append(f"Background settling failed: {h.background_error}")
    if h.orphan_rewards:
        problems.append(f"{h.orphan_rewards} reward(s) name a decision the service never made.")
    if h.late_rewards:
        notes.append(f"{h.late_rewards} reward(s) arrived after their reward window.")
    if h.ignored_rewards:
        notes.append(f"{h.ignored_rewards} reward(s) were ignored.")
    if h.duplicate_rewards:
        notes.append(f"{h.duplicate_rewards} retried reward(s) were answered from the first one.")
    if h.pending_decisions:
        notes.append(f"{h.pending_decisions} decision(s) still wait for their reward.")
    if h.fallback_decisions:
        notes.append(f"{h.fallback_decisions} decision(s) got the fallback arm while inactive.")
    if h.last_policy_update is not None:
        notes.append(f"Last policy update: {age(h.last_policy_update)} ago.")
    if problems:
        return Verdict(False, "Needs attention", problems + notes)
    headline = (
        "Healthy: traffic matches the logged probabilities and no reward is orphaned."
        if h.decisions
        else "No decisions yet."
    )
    return Verdict(True, headline, notes)


def age(since: dt.datetime, now: dt.datetime | None = None) -> str:
    """``since`` to now, in the largest whole unit (e.g. ``3 h``)."""
    now = now if now is not None else dt.datetime.now(dt.UTC)
    s = max(0.0, (now - since).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if s >= size:
            return f"{int(s // size)} {unit}"
    return f"{int(s)} s"


CSV_COLUMNS = (
    "arm",
    "decisions",
    "clicks",
    "conversions",
    "observations",
    "mean_reward",
    "ci95_low",
    "ci95_high",
    "prob_best",
    "expected_loss",
    "weight",
)


def arms_csv(st: StatsOut) -> str:
    """The per-arm table of ``/stats`` as CSV (empty cell for an undefined value).

    Text cells starting with ``= + - @`` get a leading ``'`` so a spreadsheet never runs
    them as formulas.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for a in st.arms:
        row = a.model_dump()
        arm = str(row["arm"])
        row["arm"] = "'" + arm if arm[:1] in ("=", "+", "-", "@") else arm
        writer.writerow(["" if row[c] is None else row[c] for c in CSV_COLUMNS])
    return out.getvalue()
