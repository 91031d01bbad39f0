"""``bandit-fusion simulate --env movielens,...``: the MovieLens fusion simulation from the shell.

Called by :func:`cli.simulate.simulate` when the environments are MovieLens ones; builds (or
reads from the cache) each scenario's world, runs :func:`run_fusion_experiment` and prints the
paired comparison against the reference policy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

__all__ = ["is_movielens", "simulate_movielens"]


def is_movielens(names: list[str]) -> bool:
    """True when every environment is a MovieLens one; mixing with synthetic ones is an error."""
    from simulations.movielens.env import ENVIRONMENTS

    hits = [n in ENVIRONMENTS for n in names]
    if any(hits) and not all(hits):
        raise typer.BadParameter(
            "MovieLens environments cannot be mixed with synthetic ones in one run.",
            param_hint="--env",
        )
    return bool(hits) and all(hits)


def simulate_movielens(
    names: list[str],
    *,
    data: Path | None,
    horizon: int,
    seeds: range,
    policies: list[str] | None,
    cache_dir: Path | None,
    jobs: int | None,
    record_every: int,
    fmt: str,
    out: Path,
    progress: bool,
    plots: bool,
) -> None:
    """Run the MovieLens fusion experiment and print its table (see ``simulate --help``)."""
    from rich.console import Console
    from rich.table import Table

    from simulations.movielens.data import build_world
    from simulations.movielens.env import _SCENARIO, make_env
    from simulations.movielens.experiment import run_fusion_experiment

    if data is None:
        raise typer.BadParameter("MovieLens environments need --data (the ml-100k folder).")
    try:
        envs = []
        for name in names:
            world = build_world(data, _SCENARIO[name], cache_dir=cache_dir, progress=progress)
            envs.append(make_env(name, world, horizon))
        result = run_fusion_experiment(
            envs,
            seeds,
            out,
            policies=policies,
            cache_dir=cache_dir,
            jobs=jobs,
            record_every=record_every,
            fmt=fmt,  # type: ignore[arg-type]
            progress=progress,
            plots=plots,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    except RuntimeError as exc:  # a candidate list ran dry: too many requests per user
        raise typer.BadParameter(str(exc), param_hint="--horizon") from exc
    console = Console()
    if not console.is_terminal:
        console = Console(width=140)
    for env in envs:
        console.print(_table(Table, env.name, horizon, len(seeds), result.summary))
    console.print(f"{result.rows_written:,} rows -> {result.rows_path}")
    console.print(f"summary -> {result.summary_path}")
    if plots:
        console.print(f"plots -> {', '.join(str(p) for p in result.plots)}")


def _table(table_cls: Any, env: str, horizon: int, n_seeds: int, rows: list[dict[str, Any]]) -> Any:
    mine = [r for r in rows if r["env"] == env]
    ref = mine[0]["reference"] if mine else "-"
    table = table_cls(
        title=f"{env}: clicks per request, T={horizon:,}, {n_seeds} seeds "
        f"(95% t-intervals; paired difference to {ref})"
    )
    for column in (
        "policy",
        "clicks/request",
        "95% interval",
        "diff to ref",
        "95% interval",
        "rel.",
        "s/run",
    ):
        table.add_column(column, justify="left" if column == "policy" else "right")
    for r in mine:
        c, d = r["clicks_per_request"], r["diff_to_reference"]
        table.add_row(
            r["policy"],
            f"{c['mean']:.4f}",
            f"[{c['low']:.4f}, {c['high']:.4f}]",
            f"{d['mean']:+.4f}",
            f"[{d['low']:+.4f}, {d['high']:+.4f}]",
            f"{100 * r['relative_diff']['mean']:+.1f}%",
            f"{r['wall_time_s']['mean']:.1f}",
        )
    return table
