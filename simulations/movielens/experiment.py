"""One MovieLens fusion experiment end to end: tune the baselines, run the grid, write it all.

For each environment the best fixed weights (and, with several phases, the phase oracle) are
tuned on separate seeds (cached under ``cache_dir``), then every policy runs on every seed.
The output directory receives ``rows.csv`` or ``rows.parquet`` (one row per recorded request:
``env, policy, seed, step, user, segment, clicks``), ``summary.json`` (configuration, tuned
baselines, and per environment x policy clicks per request with paired 95% intervals against
the reference), ``clicks.png``/``clicks.html`` and ``weights.png``/``weights.html``.
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from simulations.movielens.data import default_cache_dir
from simulations.movielens.env import MovieLensEnv
from simulations.movielens.plots import plot_clicks, plot_weights
from simulations.movielens.policies import FusionPolicy, default_policies
from simulations.movielens.run import FusionRun, run_grid, tune_fixed_weights, tune_phase_oracle
from simulations.movielens.summary import ORACLE, summarize_fusion
from simulations.report import RowFormat, RowWriter

__all__ = ["FusionExperimentOutput", "policies_for", "run_fusion_experiment"]

ROW_COLUMNS = ("env", "policy", "seed", "step", "user", "segment", "clicks")


@dataclass(frozen=True, slots=True)
class FusionExperimentOutput:
    """Where the experiment wrote its files, its summary rows and the tuned baselines."""

    out_dir: Path
    rows_path: Path
    summary_path: Path
    plots: tuple[Path, ...]
    summary: list[dict[str, Any]]
    tuned: dict[str, dict[str, Any]]
    rows_written: int
    wall_time_s: float


@dataclass(frozen=True, slots=True)
class _Thinned:
    run: FusionRun
    every: int

    def columns(self) -> dict[str, np.ndarray]:
        return self.run.columns(self.every)


def _env_key(env: MovieLensEnv, extra: dict[str, Any]) -> str:
    h = hashlib.sha256()
    for name in ("lists", "test_ratings", "train_counts"):
        h.update(np.ascontiguousarray(getattr(env.world, name)).tobytes())
    config = {
        "env": env.name,
        "horizon": env.horizon,
        "clicks": asdict(env.clicks),
        "n_fused": env.n_fused,
        "max_batch": env.max_batch,
        "phases": [asdict(p) for p in env.phases],
        **extra,
    }
    h.update(json.dumps(config, sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def tune(
    env: MovieLensEnv,
    tune_seeds: Sequence[int],
    *,
    weight_steps: int = 3,
    cache_dir: str | Path | None = None,
    jobs: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Best fixed weights (first phase) and, with several phases, the per-phase best arm."""
    extra = {"tune_seeds": list(tune_seeds), "weight_steps": weight_steps}
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = folder / f"tuned-{env.name}-{_env_key(env, extra)}.json"
    if path.is_file():
        cached: dict[str, Any] = json.loads(path.read_text())
        return cached
    weights = tune_fixed_weights(env, tune_seeds, steps=weight_steps, jobs=jobs, progress=progress)
    tuned: dict[str, Any] = {"best_fixed_weights": list(weights), **extra}
    if len(env.phases) > 1:
        schedule = tune_phase_oracle(env, tune_seeds, jobs=jobs, progress=progress)
        tuned["oracle_schedule"] = list(schedule)
        tuned["oracle_arms"] = [p.names[a] for p, a in zip(env.phases, schedule, strict=True)]
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(tuned, indent=2) + "\n")
    return tuned


def policies_for(
    env: MovieLensEnv, tuned: dict[str, Any], labels: Sequence[str] | None = None
) -> list[FusionPolicy]:
    """The compared policies of ``env`` (restricted to ``labels`` when given)."""
    specs = default_policies(env, tuned.get("best_fixed_weights"))
    if "oracle_schedule" in tuned:
        specs.insert(0, FusionPolicy(ORACLE, "oracle", schedule=tuple(tuned["oracle_schedule"])))
    if labels is None:
        return specs
    known = {s.label: s for s in specs}
    unknown = [label for label in labels if label not in known]
    if unknown:
        raise ValueError(
            f"policies {', '.join(unknown)} are not defined for {env.name}; "
            f"choose from {', '.join(known)}."
        )
    return [known[label] for label in labels]


def run_fusion_experiment(
    envs: Sequence[MovieLensEnv],
    seeds: Iterable[int],
    out_dir: str | Path,
    *,
    policies: Sequence[str] | None = None,
    tune_seeds: Sequence[int] = (10_000,),
    weight_steps: int = 3,
    cache_dir: str | Path | None = None,
    jobs: int | None = None,
    record_every: int = 1,
    fmt: RowFormat = "parquet",
    progress: bool = True,
    plots: bool = True,
) -> FusionExperimentOutput:
    """Tune, run every (environment, seed, policy), write rows, ``summary.json`` and plots."""
    if record_every < 1:
        raise ValueError(f"record_every must be at least 1, got {record_every}.")
    seeds = list(seeds)
    if set(seeds) & set(tune_seeds):
        raise ValueError("tune_seeds must differ from the evaluation seeds.")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    tuned = {
        env.name: tune(
            env,
            tune_seeds,
            weight_steps=weight_steps,
            cache_dir=cache_dir,
            jobs=jobs,
            progress=progress,
        )
        for env in envs
    }
    specs = {env.name: policies_for(env, tuned[env.name], policies) for env in envs}
    tasks = [(env, spec, seed) for env in envs for seed in seeds for spec in specs[env.name]]
    rows_path = out / f"rows.{fmt}"
    kept: list[FusionRun] = []
    with RowWriter(rows_path, fmt, header=ROW_COLUMNS) as writer:
        for result in run_grid(tasks, jobs=jobs, progress=progress):
            writer.write(_Thinned(result, record_every))
            kept.append(result)
    wall = time.perf_counter() - start
    summary = summarize_fusion(kept)
    summary_path = out / "summary.json"
    config = {
        "envs": [_describe(env) for env in envs],
        "policies": {name: [_spec(s) for s in ss] for name, ss in specs.items()},
        "seeds": seeds,
        "record_every": record_every,
        "jobs": jobs,
        "format": fmt,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    summary_path.write_text(
        json.dumps(
            {"config": config, "tuned": tuned, "wall_time_s": wall, "results": summary},
            indent=2,
            default=str,
        )
        + "\n"
    )
    written: tuple[Path, ...] = ()
    if plots:
        written = (
            out / "clicks.png",
            out / "clicks.html",
            out / "weights.png",
            out / "weights.html",
        )
        plot_clicks(kept, written[0], written[1])
        plot_weights(kept, written[2], written[3])
    return FusionExperimentOutput(
        out_dir=out,
        rows_path=rows_path,
        summary_path=summary_path,
        plots=written,
        summary=summary,
        tuned=tuned,
        rows_written=writer.rows_written,
        wall_time_s=wall,
    )


def _describe(env: MovieLensEnv) -> dict[str, Any]:
    return {
        "name": env.name,
        "scenario": env.world.scenario,
        "horizon": env.horizon,
        "arms": list(env.arm_names),
        "phases": [{"start": p.start, "stop": p.stop, "arms": list(p.names)} for p in env.phases],
        "clicks": asdict(env.clicks),
        "n_fused": env.n_fused,
        "max_batch": env.max_batch,
        "users": env.world.n_users,
        "items": env.world.n_items,
        "n_candidates": env.world.n_candidates,
    }


def _spec(spec: FusionPolicy) -> dict[str, Any]:
    out = asdict(replace(spec))
    return {k: v for k, v in out.items() if v not in (None, (), {})}
