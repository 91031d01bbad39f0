"""Reload the models directory while the service runs (admin endpoint and SIGHUP).

The new set is loaded, checked, warmed up and its candidate lists precomputed
(:mod:`service.candidate_cache`) beside the old one (both are in memory for a
moment), then swapped in with one assignment of ``app.state.models``. A decision takes the
set that is current when its route starts and keeps it to the end, so a decision in flight
during a reload is served entirely by the old set or entirely by the new one, never by a
mix and never with an error due to the reload. The old set is freed when its last decision
ends.

A directory that cannot be loaded, or that lacks a recommender an experiment which is not
stopped still names, is refused (the old set stays): 422 and 409 respectively.

One process only: with several uvicorn workers, ``POST /v1/admin/models/reload`` reloads the
worker that answers it. ``SIGHUP`` to a single-worker server reloads in place; with several
workers, uvicorn's supervisor answers ``SIGHUP`` by replacing each worker (the new one is
started before the old one retires), and each new worker loads the directory at start-up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.candidate_cache import with_caches
from service.errors import Conflict, Invalid
from service.models import Experiment
from service.recommenders import Recommender, load_models, warm_up
from service.settings import Settings

log = logging.getLogger("bandit_fusion.service")


def load_checked(
    settings: Settings, session_factory: Callable[[], Session]
) -> dict[str, Recommender]:
    """The models of ``settings.models_dir``, loaded and warmed up, once checked against the
    experiments that are not stopped. Raises :class:`Invalid` (unreadable directory) or
    :class:`Conflict` (an experiment's recommender missing)."""
    if settings.models_dir is None:
        raise Conflict("no models directory is configured (setting models_dir): nothing to reload")
    try:
        models = load_models(settings.models_dir, device=settings.models_device)
    except ValueError as err:
        raise Invalid(f"models not reloaded, the loaded ones stay: {err}") from err
    with session_factory() as session:
        rows = session.execute(
            select(Experiment.key, Experiment.recommenders).where(Experiment.status != "stopped")
        ).all()
    missing = sorted(
        {
            f"{key}: {name}"
            for key, names in rows
            for name in names or ()
            if name is not None and name not in models
        }
    )
    if missing:
        raise Conflict(
            "models not reloaded, the loaded ones stay: experiments that are not stopped name "
            f"recommenders missing from {settings.models_dir} ({'; '.join(missing[:10])})"
        )
    return prepared(models, settings)


def prepared(models: dict[str, Recommender], settings: Settings) -> dict[str, Recommender]:
    """``models`` ready to serve: warmed up and given their candidate caches (at start-up,
    and on a reload before the new set is swapped in)."""
    warm_up(models)
    return with_caches(models, settings.candidate_cache_depth, settings.candidate_cache_users)


async def reload_models(app: FastAPI) -> dict[str, Recommender]:
    """Load, check and swap in the models directory (reloads run one at a time)."""
    lock: asyncio.Lock = app.state.models_lock
    async with lock:
        models = await run_in_threadpool(
            load_checked, app.state.settings, app.state.read_sessionmaker
        )
        app.state.models = models  # one assignment: a decision sees the old or the new set
    log.warning("models reloaded from %s: %s", app.state.settings.models_dir, ", ".join(models))
    return models


async def reload_on_signal(app: FastAPI) -> None:
    """What ``SIGHUP`` runs: a reload whose failure is logged (the old models stay)."""
    try:
        await reload_models(app)
    except (Conflict, Invalid) as err:
        log.error("SIGHUP: %s", err.message)
    except Exception:
        log.exception("SIGHUP: reloading the models failed; the loaded ones stay")
