"""``bandit-fusion serve | keys | rebuild | db``: run and administer the allocation service.

Settings come from ``BANDIT_FUSION_*`` environment variables (and ``.env``), see
:class:`service.settings.Settings`. Heavy imports happen inside the commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from service.settings import Settings
    from service.store.keys import KeyInfo

keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)


def _settings() -> Settings:
    """Settings from the environment; invalid ones end as one line (see :mod:`cli.errors`)."""
    from service.settings import Settings

    return Settings()


def _session(settings: Settings) -> Session:
    from service.db import make_engine, make_sessionmaker

    return make_sessionmaker(make_engine(settings))()


def _check_connection(settings: Settings) -> None:
    """Open one connection to the configured database (raises if it cannot be reached)."""
    from sqlalchemy import text

    from service.db import make_engine

    engine = make_engine(settings)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    finally:
        engine.dispose()


def serve(
    host: Annotated[str | None, typer.Option(help="Default: BANDIT_FUSION_HOST.")] = None,
    port: Annotated[int | None, typer.Option(help="Default: BANDIT_FUSION_PORT.")] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Worker processes. Default: BANDIT_FUSION_WORKERS.")
    ] = None,
    migrate: Annotated[
        bool, typer.Option(help="Run 'alembic upgrade head' before serving.")
    ] = True,
    log_level: Annotated[str | None, typer.Option(help="uvicorn log level.")] = None,
    models: Annotated[
        Path | None,
        typer.Option(
            "--models",
            help="Folder written by 'bandit-fusion arms train' whose arms the service loads. "
            "Default: BANDIT_FUSION_MODELS_DIR.",
            exists=True,
            file_okay=False,
        ),
    ] = None,
    reports: Annotated[
        Path | None,
        typer.Option(
            "--reports",
            help="Folder of 'simulate' / 'replay' output folders the dashboard shows under "
            "/dashboard/reports (read sessions). Default: BANDIT_FUSION_REPORTS_DIR.",
            exists=True,
            file_okay=False,
        ),
    ] = None,
) -> None:
    """Serve the HTTP API with uvicorn."""
    import os

    import uvicorn

    from service.db import upgrade

    if models is not None:  # the workers build their settings from the environment
        os.environ["BANDIT_FUSION_MODELS_DIR"] = str(models.resolve())
    if reports is not None:
        os.environ["BANDIT_FUSION_REPORTS_DIR"] = str(reports.resolve())
    settings = _settings()
    if settings.models_dir is not None:
        from service.recommenders import load_models

        try:  # fail here, in one line, not in every worker
            load_models(settings.models_dir)
        except ValueError as err:
            raise typer.BadParameter(str(err), param_hint="--models") from err
    if migrate:
        upgrade(settings)
    else:
        _check_connection(settings)  # fail here, in one line, not in every worker
    uvicorn.run(
        "service.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers or settings.workers,
        log_level=log_level or settings.log_level,
        access_log=False,
    )


@keys_app.command("create")
def keys_create(
    scope: Annotated[str, typer.Option(help="admin, write or read.")] = "read",
    name: Annotated[str, typer.Option(help="A label to recognise the key.")] = "",
    experiment: Annotated[
        list[str] | None,
        typer.Option(
            "--experiment",
            "-e",
            help="Limit the key to this experiment key (repeatable); none: every experiment.",
        ),
    ] = None,
) -> None:
    """Create an API key and print it (it is shown only once; only its hash is stored)."""
    from service.db import upgrade
    from service.errors import ServiceError
    from service.store import keys

    settings = _settings()
    upgrade(settings)
    with _session(settings) as session:
        try:
            raw, info = keys.create_api_key(session, scope, name, experiment or None)
        except ServiceError as err:
            typer.secho(err.message, fg=typer.colors.RED, err=True)
            raise typer.Exit(2) from err
    typer.echo(raw)
    typer.secho(
        f"created {info.scope} key {info.prefix} for {_covered(info)} "
        f"(revoke: bandit-fusion keys revoke {info.prefix})",
        err=True,
    )


def _covered(info: KeyInfo) -> str:
    """'every experiment' or the comma-separated experiment keys of a limited key."""
    return "every experiment" if info.experiments is None else ",".join(info.experiments)


@keys_app.command("revoke")
def keys_revoke(
    key: Annotated[str, typer.Argument(help="The key, or its 8-character prefix.")],
) -> None:
    """Revoke an API key."""
    from service.errors import ServiceError
    from service.store import keys

    with _session(_settings()) as session:
        try:
            info = keys.revoke_api_key(session, key)
        except ServiceError as err:
            typer.secho(err.message, fg=typer.colors.RED, err=True)
            raise typer.Exit(1) from err
    typer.echo(f"revoked {info.scope} key {info.prefix}")


@keys_app.command("list")
def keys_list() -> None:
    """List API keys (prefix, scope, name, revoked, experiments)."""
    from service.store import keys

    with _session(_settings()) as session:
        for info, revoked in keys.list_api_keys(session):
            state = "revoked" if revoked else ""
            typer.echo(f"{info.prefix}\t{info.scope}\t{info.name}\t{state}\t{_covered(info)}")


def rebuild(
    experiment: Annotated[
        list[str] | None, typer.Option("--experiment", "-e", help="Experiment key (repeatable).")
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every experiment.")] = False,
    write: Annotated[
        bool, typer.Option(help="Replace the live state (and arm_series) with the rebuilt one.")
    ] = False,
) -> None:
    """Recompute policy states (and the dashboard's arm_series rows) from the stored
    decisions and rewards; compare with live ones.

    Exits 1 if a rebuilt state differs from the live one (unless --write replaces it).
    """
    from sqlalchemy import select

    from service.errors import ServiceError
    from service.models import Experiment
    from service.store import audit

    settings = _settings()
    with _session(settings) as session:
        keys = list(experiment or [])
        if all_:
            keys = list(session.scalars(select(Experiment.key).order_by(Experiment.id)))
            session.rollback()
        if not keys:
            typer.secho("give --experiment KEY or --all", fg=typer.colors.RED, err=True)
            raise typer.Exit(2)
        differ = 0
        for key in keys:
            try:
                res = audit.rebuild(session, key, write=write)
            except ServiceError as err:
                typer.secho(err.message, fg=typer.colors.RED, err=True)
                raise typer.Exit(1) from err
            verdict = "equal" if res.equal else ("REPLACED" if write else "DIFFERS")
            differ += 0 if res.equal else 1
            series = f", {res.series_differences} arm_series rows" if res.series_differences else ""
            typer.echo(
                f"{key}: {verdict} (version {res.version}, {res.updates} updates, "
                f"{res.observations} observations{series})"
            )
    if differ and not write:
        raise typer.Exit(1)


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply migrations up to REVISION (default head)."""
    from service.db import upgrade

    settings = _settings()
    upgrade(settings, revision)
    typer.echo(f"database at {revision}: {_redact(settings.url)}")


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def register(app: typer.Typer) -> None:
    """Add the service's commands to the top-level ``app``."""
    app.command("serve")(serve)
    app.command("rebuild")(rebuild)
    app.add_typer(keys_app, name="keys")
    app.add_typer(db_app, name="db")
