"""``create_app(settings)``: the FastAPI application. Nothing is built at import time."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.auth import KeyVerifier
from service.background import BackgroundFailures
from service.batching import MicroBatcher
from service.db import make_app_engines, make_sessionmaker
from service.deps import ReadKey
from service.errors import ServiceError, printable
from service.limits import BodySizeLimit
from service.model_reload import prepared, reload_on_signal
from service.policies import PolicyCache
from service.recommenders import load_models
from service.routes import dashboard, decisions, experiments, insights, models, rewards
from service.routes.responses import errors
from service.schemas import ServiceHealth
from service.settings import Settings
from service.store import learning
from service.store.decision_groups import DecisionWriter
from service.store.reward_groups import RewardWriter
from service.store.sealed_counts import SealedCounts

log = logging.getLogger("bandit_fusion.service")


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app, its engine and its routers for ``settings`` (default: environment)."""
    settings = settings if settings is not None else Settings()
    engines = make_app_engines(settings)
    factory = make_sessionmaker(engines.write)
    read_factory = make_sessionmaker(engines.read)
    writer = None
    if settings.group_decisions:
        writer = DecisionWriter(
            engines.write,
            settings.decision_group_max_rows,
            settings.decision_group_wait_ms / 1000,
            settings.decision_group_threads,
        )
    cache = PolicyCache()
    reward_writer = (
        RewardWriter(factory, cache, settings.reward_group_max_items)
        if settings.group_rewards
        else None
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = None
        if settings.settle_interval_s > 0:
            task = asyncio.create_task(_settle_loop(app, settings.settle_interval_s))
        hup = _reload_on_sighup(app) if settings.models_dir else False
        try:
            yield
        finally:
            if hup:
                asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if writer is not None:
                await asyncio.to_thread(writer.close)  # stores what is queued
            if reward_writer is not None:
                await asyncio.to_thread(reward_writer.close)  # records what is queued
            app.state.counterfactual_cache.close()
            engines.dispose()

    production = settings.environment == "production"
    app = FastAPI(
        title="bandit-fusion allocation service",
        version="1.0.0",
        summary="Live traffic allocation with multi-armed bandits, every decision and reward "
        "logged in SQL.",
        lifespan=lifespan,
        # in production both are served below, behind an API key
        docs_url=None if production else "/docs",
        openapi_url=None if production else "/openapi.json",
        redoc_url=None,
    )
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.state.settings = settings
    app.state.engines = engines
    app.state.sessionmaker = factory  # transactions that write
    app.state.read_sessionmaker = read_factory  # read-only transactions
    app.state.decision_writer = writer  # group commit of decisions (None: off)
    app.state.scored_keys = set()  # experiments whose decisions score items (see routes)
    # start-up: a models directory that cannot be read stops the service here
    app.state.models = (
        load_models(settings.models_dir, device=settings.models_device)
        if settings.models_dir
        else {}
    )
    if app.state.models and settings.torch_threads is not None:
        import torch

        torch.set_num_threads(settings.torch_threads)
    app.state.models = prepared(app.state.models, settings)
    app.state.models_lock = asyncio.Lock()  # one reload at a time (service.model_reload)
    app.state.batcher = (
        MicroBatcher(settings.decision_batch_window_ms / 1000, settings.decision_batch_max)
        if settings.decision_batching
        else None
    )
    app.state.policy_cache = cache
    app.state.reward_writer = reward_writer  # group commit of single rewards (None: off)
    app.state.background_failures = BackgroundFailures()
    app.state.sealed_counts = SealedCounts()  # final decision counts of the past, per process
    app.state.key_verifier = KeyVerifier(read_factory, settings.auth_cache_ttl_s)

    _add_error_handlers(app)

    @app.get(
        "/v1/health",
        response_model=ServiceHealth,
        response_model_exclude_none=True,
        tags=["service"],
        responses=errors(503),
    )
    def service_health() -> ServiceHealth:
        """Liveness: the database answers. No API key needed; in production the answer
        says nothing about the backend."""
        try:
            with engines.read.connect() as conn:
                conn.execute(text("SELECT 1"))
                conn.rollback()
        except SQLAlchemyError as err:
            log.error("health check: the database does not answer: %s", err)
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "unavailable") from err
        return ServiceHealth(
            status="ok", database=None if production else engines.read.dialect.name
        )

    for module in (experiments, decisions, rewards, insights, models):
        app.include_router(module.router)
    dashboard.install(app, settings)
    if production:
        _add_private_docs(app)
    return app


def _add_error_handlers(app: FastAPI) -> None:
    """Every error answer is a :class:`service.schemas.Error` body."""

    @app.exception_handler(ServiceError)
    async def _service_error(_request: Request, err: ServiceError) -> JSONResponse:
        return JSONResponse({"detail": printable(err.message)}, status_code=err.status_code)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, err: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            {"detail": printable(str(err.detail))},
            status_code=err.status_code,
            headers=getattr(err, "headers", None),
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, err: RequestValidationError) -> JSONResponse:
        # the offending input is not echoed back (it may be huge, NaN or a lone surrogate)
        items = [
            {
                "type": str(e.get("type", "invalid")),
                "loc": [x if isinstance(x, int) else printable(str(x)) for x in e.get("loc", ())],
                "msg": printable(str(e.get("msg", "invalid"))),
            }
            for e in err.errors()
        ]
        detail = "; ".join(f"{'.'.join(str(x) for x in i['loc'])}: {i['msg']}" for i in items)
        return JSONResponse({"detail": detail or "invalid request", "errors": items}, 422)


def _add_private_docs(app: FastAPI) -> None:
    """Production: the OpenAPI document and its Swagger page need an API key (any scope).

    The page embeds the document, so it needs no second request (which a browser would send
    without the key)."""

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi(_key: ReadKey) -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False)
    async def docs(_key: ReadKey) -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{app.title} - docs",
            swagger_ui_parameters={"spec": app.openapi()},
        )


def _reload_on_sighup(app: FastAPI) -> bool:
    """``SIGHUP`` reloads the models (in the main thread's loop only: uvicorn's; a test
    client's loop runs in another thread and gets no handler). Whether it was installed."""
    loop = asyncio.get_running_loop()
    running: set[asyncio.Task[None]] = set()

    def handle() -> None:
        task = loop.create_task(reload_on_signal(app))
        running.add(task)  # keep a reference until it ends
        task.add_done_callback(running.discard)

    try:
        loop.add_signal_handler(signal.SIGHUP, handle)
    except (NotImplementedError, RuntimeError, ValueError, AttributeError):
        return False
    return True


async def _settle_loop(app: FastAPI, interval: float) -> None:
    """Learn the zero reward of decisions whose window closed (see ``learning.settle``)."""
    while True:
        await asyncio.sleep(interval)
        try:
            await run_in_threadpool(_settle_once, app)
        except Exception:  # keep the loop alive; the next pass retries
            log.exception("settle pass failed")


def _settle_once(app: FastAPI) -> Any:
    with app.state.sessionmaker() as session:
        return learning.settle_all(session, app.state.policy_cache, app.state.background_failures)
