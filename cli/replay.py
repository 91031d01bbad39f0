"""``bandit-fusion replay`` and ``bandit-fusion export``: offline evaluation from the shell.

``replay`` evaluates candidate policies on a logged data set (an Open Bandit Dataset folder,
a service export in Parquet, or the service's database) with the off-policy estimators of
:mod:`simulations.ope`, prints a table and writes ``summary.json`` and a chart. ``export``
writes the service's decision log joined with its rewards (:mod:`service.export`). Heavy
imports happen inside the commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli.simulate import parse_params

if TYPE_CHECKING:
    from simulations.logged import LoggedFeedback
    from simulations.offline import Candidate

__all__ = ["export", "register", "replay"]

STATIC = ("uniform", "zozotown-bts")


def _split(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _fail(message: str, debug: bool, err: BaseException | None = None) -> None:
    if debug and err is not None:
        raise err
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


def _database_url(url: str | None) -> str:
    if url:
        return url
    from service.settings import Settings

    return Settings().url


def _load(path: Path | None, database_url: str | None, experiment: str | None) -> LoggedFeedback:
    from simulations.obd import load_obd
    from simulations.service_log import load_service_log

    if experiment is not None:
        if path is not None:
            raise ValueError("give either a PATH or --experiment (with --database-url), not both.")
        from service.errors import ServiceError
        from service.export import export_log_from_url

        try:
            table = export_log_from_url(_database_url(database_url), experiment)
        except ServiceError as err:
            raise ValueError(str(err)) from None
        return load_service_log(table).feedback
    if path is None:
        raise ValueError("give a PATH (OBD folder or CSV, or a .parquet export) or --experiment.")
    if path.suffix == ".parquet":
        return load_service_log(path).feedback
    return load_obd(path)


def _candidates(
    names: list[str],
    overrides: dict[str, dict[str, Any]],
    log: LoggedFeedback,
    campaign: str,
    seed: int,
    dists: list[str] | None,
) -> list[Candidate]:
    import numpy as np

    from bandit import POLICIES, make_policy
    from simulations.offline import Candidate
    from simulations.ope.policies import uniform, zozotown_prior

    out: list[Candidate] = []
    for name in names:
        if name == "uniform":
            out.append(Candidate(name, uniform(log.n_actions, log.n_positions)))
        elif name == "zozotown-bts":
            out.append(Candidate(name, zozotown_prior(campaign, log.n_positions)))
        elif name in POLICIES:
            params = overrides.get(name, {})
            make_policy(name, log.n_actions, seed=seed, **params)  # check the parameters now

            def factory(name: str = name, params: dict[str, Any] = params) -> Any:
                return make_policy(name, log.n_actions, seed=seed, **params)

            out.append(Candidate(name, make_policy=factory))
        else:
            raise ValueError(
                f"policies must be among {', '.join([*STATIC, *POLICIES])}; got {name!r}."
            )
    for spec in dists or []:
        label, sep, file = spec.partition("=")
        if not sep:
            raise ValueError(f"--action-dist must be NAME=FILE.npy, got {spec!r}.")
        out.append(Candidate(label.strip(), np.load(file.strip())))
    return out


def replay(
    path: Annotated[
        Path | None,
        typer.Argument(help="OBD folder (<policy>/<campaign>/) or its CSV, or a .parquet export."),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(help="Service database (SQLAlchemy URL); default: BANDIT_FUSION settings."),
    ] = None,
    experiment: Annotated[
        str | None, typer.Option(help="Experiment key: evaluate on the service's own log.")
    ] = None,
    policies: Annotated[
        str,
        typer.Option(
            help="Comma-separated candidates: any `bandit-fusion policies` name (replayed, "
            "learning as it goes), uniform, zozotown-bts (ZOZOTOWN's production prior)."
        ),
    ] = "thompson,kl-ucb,uniform",
    params: Annotated[
        list[str] | None,
        typer.Option("--params", help="Overrides 'policy:key=value[,key=value]', as in simulate."),
    ] = None,
    action_dist: Annotated[
        list[str] | None,
        typer.Option(
            "--action-dist",
            help="Extra candidate NAME=FILE.npy: an action distribution of shape "
            "(actions, positions) or (rounds, actions, positions) (repeatable).",
        ),
    ] = None,
    estimators: Annotated[
        str, typer.Option(help="Comma-separated: replay, ips, snips, dm, dr, switch-dr, dr-os.")
    ] = "replay,ips,snips,dm,dr,switch-dr,dr-os",
    campaign: Annotated[str, typer.Option(help="zozotown-bts prior: all, men or women.")] = "all",
    batch: Annotated[
        int, typer.Option(min=1, help="Replay: learn every BATCH rows (1: exact per-row replay).")
    ] = 1,
    bootstrap: Annotated[int, typer.Option(min=1, help="Bootstrap replicates.")] = 1000,
    confidence: Annotated[float, typer.Option(min=0.5, max=0.999, help="Interval level.")] = 0.95,
    seed: Annotated[int, typer.Option(min=0, help="Seed of policies and bootstrap.")] = 0,
    out: Annotated[Path, typer.Option(help="Output directory.")] = Path("replay"),
    plots: Annotated[bool, typer.Option(help="Write estimates.png and estimates.html.")] = True,
    progress: Annotated[bool, typer.Option(help="Show a progress bar while replaying.")] = True,
    debug: Annotated[bool, typer.Option(help="Show tracebacks.")] = False,
) -> None:
    """Estimate what candidate policies would have earned on a logged data set.

    Prints estimate, interval, effective sample size and largest importance weight for every
    candidate x estimator; writes summary.json, estimates.png and estimates.html to OUT.
    """
    from rich.console import Console
    from rich.table import Table
    from tqdm import tqdm

    from simulations.offline import evaluate_offline
    from simulations.offline_report import write_offline_report

    try:
        log = _load(path, database_url, experiment)
        names = _split(policies)
        overrides = parse_params(params)
        unknown = sorted(set(overrides) - set(names))
        if unknown:
            raise ValueError(f"--params for policies that are not evaluated: {', '.join(unknown)}.")
        cands = _candidates(names, overrides, log, campaign, seed, action_dist)
        if not cands:
            raise ValueError("give at least one policy.")
        learning = sum(c.make_policy is not None for c in cands)
        bar = tqdm(
            total=learning * log.n_rounds,
            unit="row",
            disable=not progress or not learning,
            desc="replay",
        )

        def tick(rows: int) -> None:
            bar.update(rows)

        try:
            result = evaluate_offline(
                log,
                cands,
                _split(estimators),
                n_bootstrap=bootstrap,
                confidence=confidence,
                seed=seed,
                batch=batch,
                progress=tick,
                on_replay_start=lambda name: bar.set_description(f"replay {name}"),
            )
        finally:
            bar.close()
        report = write_offline_report(result, out, plots=plots)
    except (ValueError, OSError, typer.BadParameter) as err:
        _fail(str(err), debug, err)
        return
    table = Table(
        title=f"{result.log_name}: {result.n_rounds:,} rounds, logged mean reward "
        f"{result.on_policy_mean:.5f} ({confidence:.0%} bootstrap intervals)"
    )
    for col in ("policy", "estimator", "estimate", "interval", "ESS", "max weight"):
        table.add_column(col, justify="left" if col in ("policy", "estimator") else "right")
    for r in result.rows:
        table.add_row(
            r.policy,
            r.estimator,
            f"{r.value:.5f}",
            f"[{r.ci_low:.5f}, {r.ci_high:.5f}]",
            f"{r.ess:,.0f}",
            "-" if r.max_weight != r.max_weight else f"{r.max_weight:.2f}",
        )
    console = Console()
    if not console.is_terminal:
        console = Console(width=120)
    console.print(table)
    for note in result.notes:
        console.print(f"note: {note}")
    console.print(f"summary -> {report.summary}")
    if report.png is not None:
        console.print(f"plots -> {report.png}, {report.html}")


def export(
    experiment: Annotated[str, typer.Option(help="Experiment key.")],
    out: Annotated[Path, typer.Option(help="Parquet file to write.")] = Path("decisions.parquet"),
    database_url: Annotated[
        str | None,
        typer.Option(help="Service database (SQLAlchemy URL); default: BANDIT_FUSION settings."),
    ] = None,
    debug: Annotated[bool, typer.Option(help="Show tracebacks.")] = False,
) -> None:
    """Export an experiment's decisions joined with their rewards (Parquet, format 1; see
    service/export.py)."""
    from service.errors import ServiceError
    from service.export import export_log_from_url, write_export

    try:
        table = export_log_from_url(_database_url(database_url), experiment)
        written = write_export(table, out)
    except (ServiceError, ValueError, OSError) as err:
        _fail(str(err), debug, err)
        return
    typer.echo(f"{table.num_rows:,} decisions -> {written}")


def register(app: typer.Typer) -> None:
    """Add ``replay`` and ``export`` to the top-level ``app``."""
    app.command("replay")(replay)
    app.command("export")(export)
