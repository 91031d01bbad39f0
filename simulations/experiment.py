"""One experiment end to end: run the grid, stream the rows to disk, summarise and plot.

The output directory receives ``rows.csv`` or ``rows.parquet`` (flat rows, thinned by
``record_every``), ``summary.json`` (configuration and per environment x policy final regret
with 95% t-intervals and wall times), ``regret.png`` and ``regret.html``.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from simulations.envs import AnyEnvironment, Delayed
from simulations.parallel import Backend
from simulations.report import RowFormat, RowWriter, plot_regret, summarize
from simulations.runner import PolicySpec, RunResult, run_grid

__all__ = ["ExperimentOutput", "run_experiment"]


@dataclass(frozen=True, slots=True)
class ExperimentOutput:
    """Where the experiment wrote its files, and its summary rows."""

    out_dir: Path
    rows_path: Path
    summary_path: Path
    png_path: Path
    html_path: Path
    summary: list[dict[str, Any]]
    rows_written: int
    wall_time_s: float


def _describe(env: AnyEnvironment) -> dict[str, Any]:
    desc: dict[str, Any] = {
        "name": env.name,
        "type": type(env).__name__,
        "n_arms": env.n_arms,
        "horizon": env.horizon,
        "means": list(env.means),
        "delay": env.delay,
        "batch": env.batch,
    }
    desc["noise"] = env.base.noise if isinstance(env, Delayed) else env.noise
    return desc


def run_experiment(
    envs: Sequence[AnyEnvironment],
    policies: Sequence[PolicySpec],
    seeds: Iterable[int],
    out_dir: str | Path,
    *,
    jobs: int | None = None,
    record_every: int = 1,
    fmt: RowFormat = "parquet",
    progress: bool = True,
    plots: bool = True,
    backend: Backend = "local",
) -> ExperimentOutput:
    """Run every (environment, seed, policy), write rows, ``summary.json`` and the plots.

    Rows are written as each run finishes; only the small regret curves are kept in memory
    for the summary and the plots. ``backend`` chooses local processes or Ray
    (:mod:`simulations.parallel`).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    seeds = list(seeds)
    rows_path = out / f"rows.{fmt}"
    kept: list[RunResult] = []
    start = time.perf_counter()
    with RowWriter(rows_path, fmt) as writer:
        for result in run_grid(
            envs,
            policies,
            seeds,
            jobs=jobs,
            record_every=record_every,
            progress=progress,
            backend=backend,
        ):
            writer.write(result)
            # Drop the written columns; keep what the summary and the plots need.
            kept.append(
                replace(
                    result,
                    steps=result.steps[:0],
                    arms=result.arms[:0],
                    rewards=result.rewards[:0],
                    regret=result.regret[:0],
                )
            )
    wall = time.perf_counter() - start
    summary = summarize(kept)
    summary_path = out / "summary.json"
    summary_path.write_text(
        json.dumps(
            {
                "config": {
                    "envs": [_describe(e) for e in envs],
                    "policies": [
                        {"name": p.name, "label": p.display, "params": dict(p.params)}
                        for p in policies
                    ],
                    "seeds": seeds,
                    "record_every": record_every,
                    "jobs": jobs,
                    "backend": backend,
                    "format": fmt,
                    "python": platform.python_version(),
                    "machine": platform.machine(),
                },
                "wall_time_s": wall,
                "results": summary,
            },
            indent=2,
            default=str,
        )
        + "\n"
    )
    png, html = out / "regret.png", out / "regret.html"
    if plots:
        plot_regret(kept, png, html)
    return ExperimentOutput(
        out_dir=out,
        rows_path=rows_path,
        summary_path=summary_path,
        png_path=png,
        html_path=html,
        summary=summary,
        rows_written=writer.rows_written,
        wall_time_s=wall,
    )
