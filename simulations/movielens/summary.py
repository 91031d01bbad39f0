"""Paired comparisons of MovieLens runs: clicks per request against a reference policy.

Every policy of a seed sees the same users and click uniforms, so the difference to the
reference is taken seed by seed and its mean gets a Student-t interval over seeds
(:func:`simulations.report.mean_interval`): much narrower than comparing two separate
intervals.  The reference is the best single arm (the ``arm:*`` policy with the highest mean),
or, in environments with several phases, the phase oracle when it ran.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from simulations.movielens.run import FusionRun
from simulations.report import mean_interval

__all__ = ["ORACLE", "reference_policy", "summarize_fusion"]

ORACLE = "phase-oracle"


def _group(runs: Iterable[FusionRun]) -> dict[str, dict[str, dict[int, FusionRun]]]:
    out: dict[str, dict[str, dict[int, FusionRun]]] = defaultdict(lambda: defaultdict(dict))
    for run in runs:
        out[run.env][run.policy][run.seed] = run
    return out


def reference_policy(by_policy: dict[str, dict[int, FusionRun]]) -> str:
    """The phase oracle when it ran, else the single arm with the most clicks per request."""
    if ORACLE in by_policy:
        return ORACLE
    arms = [p for p in by_policy if p.startswith("arm:")]
    if not arms:
        raise ValueError("runs hold no single-arm policy ('arm:*') to compare against.")
    return max(arms, key=lambda p: np.mean([r.clicks_per_request for r in by_policy[p].values()]))


def _interval(values: Sequence[float]) -> dict[str, float]:
    mean, low, high = mean_interval(values)
    return {"mean": mean, "low": low, "high": high}


def _window(run: FusionRun, start: int, stop: int) -> float:
    return float(run.clicks[start:stop].mean())


def _phases(run: FusionRun) -> list[tuple[int, int]]:
    edges = [*run.phase_starts, run.horizon]
    return list(itertools.pairwise(edges))


def summarize_fusion(runs: Iterable[FusionRun]) -> list[dict[str, Any]]:
    """One dict per (environment, policy): clicks per request and paired differences.

    Keys: ``env``, ``policy``, ``reference``, ``n_seeds``, ``horizon``, ``clicks_per_request``
    (mean, low, high: 95% t-interval over seeds), ``diff_to_reference`` (paired, same form),
    ``relative_diff`` (the paired difference over the reference's mean),
    ``gap_first_quarter`` / ``gap_last_quarter`` (paired difference within the first and last
    quarter of the run) and ``gap_change`` (last minus first, paired),
    ``reference_first_quarter`` / ``reference_last_quarter`` (the reference's clicks per
    request there, to read the gaps as shares), ``phases`` (clicks per
    request and paired difference per phase), ``segments`` (clicks per request per user
    segment), ``wall_time_s`` (mean and max per run).
    """
    rows = []
    for env, by_policy in _group(runs).items():
        ref_name = reference_policy(by_policy)
        ref = by_policy[ref_name]
        ref_mean = float(np.mean([r.clicks_per_request for r in ref.values()]))
        for policy, by_seed in by_policy.items():
            seeds = sorted(set(by_seed) & set(ref))
            mine = [by_seed[s] for s in seeds]
            theirs = [ref[s] for s in seeds]
            horizon = mine[0].horizon
            q = horizon // 4
            diff = [
                a.clicks_per_request - b.clicks_per_request
                for a, b in zip(mine, theirs, strict=True)
            ]
            first = [_window(a, 0, q) - _window(b, 0, q) for a, b in zip(mine, theirs, strict=True)]
            last = [
                _window(a, horizon - q, horizon) - _window(b, horizon - q, horizon)
                for a, b in zip(mine, theirs, strict=True)
            ]
            phases = []
            for start, stop in _phases(mine[0]):
                phase_ref = float(np.mean([_window(b, start, stop) for b in theirs]))
                phases.append(
                    {
                        "start": start,
                        "stop": stop,
                        "clicks_per_request": _interval([_window(a, start, stop) for a in mine]),
                        "reference": phase_ref,
                        "diff_to_reference": _interval(
                            [
                                _window(a, start, stop) - _window(b, start, stop)
                                for a, b in zip(mine, theirs, strict=True)
                            ]
                        ),
                    }
                )
            diff_iv = _interval(diff)
            rows.append(
                {
                    "env": env,
                    "policy": policy,
                    "reference": ref_name,
                    "n_seeds": len(seeds),
                    "horizon": horizon,
                    "clicks_per_request": _interval([r.clicks_per_request for r in mine]),
                    "diff_to_reference": diff_iv,
                    "relative_diff": {k: v / ref_mean for k, v in diff_iv.items()},
                    "gap_first_quarter": _interval(first),
                    "gap_last_quarter": _interval(last),
                    "gap_change": _interval([b - a for a, b in zip(first, last, strict=True)]),
                    "reference_first_quarter": float(np.mean([_window(b, 0, q) for b in theirs])),
                    "reference_last_quarter": float(
                        np.mean([_window(b, horizon - q, horizon) for b in theirs])
                    ),
                    "phases": phases,
                    "segments": _segments(mine),
                    "wall_time_s": {
                        "mean": float(np.mean([r.wall_time_s for r in mine])),
                        "max": float(np.max([r.wall_time_s for r in mine])),
                    },
                }
            )
    return rows


def _segments(runs: Sequence[FusionRun]) -> dict[str, dict[str, float]]:
    names = runs[0].segment_names
    out = {}
    for s, name in enumerate(names):
        values = [float(r.clicks[r.segments == s].mean()) for r in runs if (r.segments == s).any()]
        if values:
            out[name] = _interval(values)
    return out
