"""``bandit-fusion simulate`` and ``bandit-fusion policies``: synthetic experiments from the shell.

``simulate`` runs policies x environments x seeds with :mod:`simulations` and writes rows,
``summary.json`` and regret plots to ``--out``; ``policies`` lists the registered policies with
their default hyper-parameters.  numpy, the bandit package and the plotting libraries are
imported inside the commands so ``bandit-fusion --help`` stays fast.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["parse_params", "policies", "simulate"]


class ParallelBackend(StrEnum):
    """Where the runs execute (see :mod:`simulations.parallel`)."""

    local = "local"
    ray = "ray"


class RowFormat(StrEnum):
    """File format of the written rows."""

    csv = "csv"
    parquet = "parquet"


def _value(text: str) -> Any:
    """``"3"`` -> 3, ``"0.5"`` -> 0.5, ``"true"`` -> True, ``"none"`` -> None, else the text."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text.strip()


def parse_params(specs: list[str] | None) -> dict[str, dict[str, Any]]:
    """Parse ``policy:key=value[,key=value]`` overrides (several per string, ``;``-separated).

    >>> parse_params(["discounted-thompson:gamma=0.999", "ucb1:alpha=1;exp3:gamma=0.1"])
    {'discounted-thompson': {'gamma': 0.999}, 'ucb1': {'alpha': 1}, 'exp3': {'gamma': 0.1}}
    """
    out: dict[str, dict[str, Any]] = {}
    for spec in specs or []:
        for part in filter(None, (p.strip() for p in spec.split(";"))):
            name, sep, assignments = part.partition(":")
            if not sep or not name.strip():
                raise typer.BadParameter(
                    f"expected 'policy:key=value[,key=value]', got {part!r}.", param_hint="--params"
                )
            for assignment in filter(None, (a.strip() for a in assignments.split(","))):
                key, eq, value = assignment.partition("=")
                if not eq or not key.strip():
                    raise typer.BadParameter(
                        f"expected key=value in {part!r}, got {assignment!r}.",
                        param_hint="--params",
                    )
                out.setdefault(name.strip(), {})[key.strip()] = _value(value)
    return out


def _option_named_in(message: str) -> str:
    """The ``simulate`` option that an environment's ``ValueError`` is about.

    >>> _option_named_in("sigma must be positive, got -1.0.")
    "'--sigma'"
    """
    first = message.split()[0] if message.split() else ""
    options = {
        "unknown": "--env",
        "Bernoulli": "--means",
        "means": "--means",
        "sigma": "--sigma",
        "horizon": "--horizon",
        "change": "--change-at",
        "delay": "--delay",
        "batch": "--batch",
    }
    return repr(options.get(first, "--env"))


def _split(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def simulate(
    env: Annotated[
        str,
        typer.Option(
            help="Environment(s), comma-separated: bernoulli, bernoulli-reversal, gaussian, "
            "gaussian-reversal, two-changes, drift, delayed; or the MovieLens fusion "
            "simulations movielens, movielens-cold-start, movielens-drift (with --data)."
        ),
    ] = "bernoulli",
    arms: Annotated[int, typer.Option(min=1, help="Number of arms K.")] = 10,
    horizon: Annotated[
        int | None,
        typer.Option(min=1, help="Rounds T per run (default 100,000; MovieLens: 20,000)."),
    ] = None,
    policies: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated policy names (see `bandit-fusion policies`; default "
            "ucb1,kl-ucb,thompson); peer adapters river-ucb, river-thompson, mabwiser-ucb1, "
            "mabwiser-thompson also work. MovieLens: labels of the compared policies "
            "(default: all of them, e.g. arm:mf,uniform-fusion,fusion-thompson)."
        ),
    ] = None,
    seeds: Annotated[int, typer.Option(min=1, help="Number of seeds (runs per cell).")] = 20,
    first_seed: Annotated[
        int, typer.Option(min=0, help="Seeds are first_seed .. first_seed+seeds-1.")
    ] = 0,
    means: Annotated[
        str,
        typer.Option(help="Arm means: 'low:high' (linear spread over the arms) or 'm1,m2,...'."),
    ] = "0.02:0.08",
    sigma: Annotated[float, typer.Option(help="Noise standard deviation of Gaussian arms.")] = 0.1,
    change_at: Annotated[
        float,
        typer.Option(
            help="Reversal environments: fraction of the horizon where the means reverse."
        ),
    ] = 0.5,
    delay: Annotated[
        int, typer.Option(min=1, help="delayed: rounds before a reward arrives.")
    ] = 100,
    batch: Annotated[
        int | None,
        typer.Option(
            min=1, help="delayed: deliver arrived rewards every BATCH rounds (default: delay)."
        ),
    ] = None,
    params: Annotated[
        list[str] | None,
        typer.Option(
            "--params",
            help="Hyper-parameter overrides 'policy:key=value[,key=value]' "
            "(repeatable), e.g. 'discounted-thompson:gamma=0.999'.",
        ),
    ] = None,
    jobs: Annotated[
        int | None,
        typer.Option(min=1, help="Worker processes (default: all cores; 1: in this process)."),
    ] = None,
    backend: Annotated[
        ParallelBackend,
        typer.Option(
            help="local: worker processes on this machine. ray: one Ray task per run, on the "
            "cluster named by RAY_ADDRESS or on a local Ray instance with JOBS CPUs "
            "(needs the 'ray' extra).",
        ),
    ] = ParallelBackend.local,
    record_every: Annotated[
        int,
        typer.Option(min=1, help="Write every N-th row (regret is still computed on every round)."),
    ] = 1,
    fmt: Annotated[
        RowFormat, typer.Option("--format", help="Row file format.")
    ] = RowFormat.parquet,
    out: Annotated[Path, typer.Option(help="Output directory.")] = Path("simulation"),
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    plots: Annotated[
        bool, typer.Option(help="Write the plots (regret.*; MovieLens: clicks.* and weights.*).")
    ] = True,
    data: Annotated[
        Path | None,
        typer.Option(help="MovieLens: the ml-100k folder.", exists=True, file_okay=False),
    ] = None,
    cache_dir: Annotated[
        Path | None,
        typer.Option(
            help="MovieLens: cache of the arms' candidate lists and tuned baselines "
            "(default $BANDIT_FUSION_CACHE/movielens or ~/.cache/bandit-fusion/movielens)."
        ),
    ] = None,
) -> None:
    """Simulate bandit policies on synthetic environments and report their expected regret.

    Writes rows.{csv,parquet} (env, policy, seed, step, arm, reward, cumulative regret),
    summary.json (final regret: mean and 95% t-interval over seeds, wall time), regret.png and
    regret.html to OUT, and prints the summary table.

    MovieLens environments (--env movielens,movielens-cold-start,movielens-drift --data DIR)
    fuse the arms' lists for simulated users instead and write rows (env, policy, seed, step,
    user, segment, clicks), summary.json (clicks per request with paired 95% intervals against
    the best single arm or the phase oracle), clicks.png/html and weights.png/html.
    """
    from rich.console import Console
    from rich.table import Table

    from cli.simulate_movielens import is_movielens, simulate_movielens
    from simulations.envs import make_env, parse_means
    from simulations.experiment import run_experiment
    from simulations.runner import PolicySpec

    if is_movielens(_split(env)):
        simulate_movielens(
            _split(env),
            data=data,
            horizon=horizon or 20_000,
            seeds=range(first_seed, first_seed + seeds),
            policies=_split(policies) if policies else None,
            cache_dir=cache_dir,
            jobs=jobs,
            record_every=record_every,
            fmt=fmt.value,
            out=out,
            progress=progress,
            plots=plots,
        )
        return
    horizon = horizon or 100_000
    policies = policies or "ucb1,kl-ucb,thompson"
    try:
        arm_means = parse_means(means, arms)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="'--means'") from exc
    try:
        envs = [
            make_env(
                kind, arm_means, horizon, sigma=sigma, change_at=change_at, delay=delay, batch=batch
            )
            for kind in _split(env)
        ]
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=_option_named_in(str(exc))) from exc
    names = _split(policies)
    if not names:
        raise typer.BadParameter("give at least one policy.", param_hint="--policies")
    overrides = parse_params(params)
    unknown = sorted(set(overrides) - set(names))
    if unknown:
        raise typer.BadParameter(
            f"overrides for policies that are not run: {', '.join(unknown)}.", param_hint="--params"
        )
    _check_policies(names, overrides, envs)
    specs = [PolicySpec(name, overrides.get(name, {})) for name in names]
    if backend is ParallelBackend.ray:
        try:
            import ray  # noqa: F401
        except ImportError:
            raise typer.BadParameter(
                "Ray is not installed: pip install 'bandit-fusion[ray]'", param_hint="'--backend'"
            ) from None
    result = run_experiment(
        envs,
        specs,
        range(first_seed, first_seed + seeds),
        out,
        jobs=jobs,
        record_every=record_every,
        fmt=fmt.value,
        progress=progress,
        plots=plots,
        backend=backend.value,
    )
    table = Table(
        title=f"Final expected regret after {horizon:,} rounds ({seeds} seeds, 95% t-interval)"
    )
    for column in ("env", "policy", "regret", "95% interval", "s/run", "rounds/s"):
        table.add_column(column, justify="left" if column in ("env", "policy") else "right")
    for row in result.summary:
        table.add_row(
            row["env"],
            row["policy"],
            f"{row['regret_mean']:.1f}",
            f"[{row['regret_ci_low']:.1f}, {row['regret_ci_high']:.1f}]",
            f"{row['wall_time_s']:.2f}",
            f"{row['rounds_per_s']:,.0f}",
        )
    console = Console()
    if not console.is_terminal:  # a log or a pipe: do not squeeze the table into 80 columns
        console = Console(width=120)
    console.print(table)
    console.print(f"{result.rows_written:,} rows -> {result.rows_path}")
    console.print(f"summary -> {result.summary_path}")
    if plots:
        console.print(f"plots -> {result.png_path}, {result.html_path}")


def _check_policies(
    names: list[str], overrides: dict[str, dict[str, Any]], envs: list[Any]
) -> None:
    """Fail early, before any worker starts: unknown or repeated policies, bad
    hyper-parameters, and policies whose reward range cannot hold an environment's rewards."""
    from bandit import POLICIES, make_policy
    from simulations.peers import PEERS

    unknown = [n for n in names if n not in POLICIES and n not in PEERS]
    if unknown:
        raise typer.BadParameter(
            f"unknown policies {', '.join(unknown)}; choose from {', '.join([*POLICIES, *PEERS])}.",
            param_hint="--policies",
        )
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise typer.BadParameter(
            f"policies listed twice: {', '.join(repeated)}.", param_hint="--policies"
        )
    gaussian = [e.name for e in envs if getattr(e, "noise", "bernoulli") == "gaussian"]
    for name in names:
        if name in PEERS:
            continue
        try:
            policy = make_policy(name, envs[0].n_arms, seed=0, **overrides.get(name, {}))
        except ValueError as exc:
            raise typer.BadParameter(f"{name}: {exc}", param_hint="--params") from exc
        low, high = policy.reward_range
        if gaussian and (low >= 0.0 and high <= 1.0):
            raise typer.BadParameter(
                f"{name} learns rewards in [{low}, {high}] but {', '.join(gaussian)} draws "
                "Gaussian rewards outside it; use gaussian-thompson there.",
                param_hint="--policies",
            )


def policies() -> None:
    """List the registered bandit policies and their default hyper-parameters."""
    from rich.console import Console
    from rich.table import Table

    from bandit import POLICIES, make_policy
    from simulations.peers import PEERS

    table = Table(title="Registered policies (override with --params 'name:key=value')")
    table.add_column("policy")
    table.add_column("default hyper-parameters")
    for name in POLICIES:
        defaults = make_policy(name, n_arms=2, seed=0).params
        table.add_row(name, ", ".join(f"{k}={v!r}" for k, v in dict(defaults).items()) or "-")
    console = Console()
    console.print(table)
    console.print(f"Peer adapters for benchmarks: {', '.join(PEERS)}")
