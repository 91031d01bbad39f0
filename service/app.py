"""``create_app(settings)``: the FastAPI application. Nothing is built at import time."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import text

from service.auth import KeyVerifier
from service.background import BackgroundFailures
from service.db import make_app_engines, make_sessionmaker
from service.errors import ServiceError
from service.policies import PolicyCache
from service.routes import decisions, experiments, insights, rewards
from service.schemas import ServiceHealth
from service.settings import Settings
from service.store import learning

log = logging.getLogger("bandit_fusion.service")


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app, its engine and its routers for ``settings`` (default: environment)."""
    settings = settings if settings is not None else Settings()
    engines = make_app_engines(settings)
    factory = make_sessionmaker(engines.write)
    read_factory = make_sessionmaker(engines.read)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = None
        if settings.settle_interval_s > 0:
            task = asyncio.create_task(_settle_loop(app, settings.settle_interval_s))
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            engines.dispose()

    app = FastAPI(
        title="bandit-fusion allocation service",
        version="1.0.0",
        summary="Live traffic allocation with multi-armed bandits, every decision and reward "
        "logged in SQL.",
        lifespan=lifespan,
        docs_url=None if settings.environment == "production" else "/docs",
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.engines = engines
    app.state.sessionmaker = factory  # transactions that write
    app.state.read_sessionmaker = read_factory  # read-only transactions
    app.state.policy_cache = PolicyCache()
    app.state.background_failures = BackgroundFailures()
    app.state.key_verifier = KeyVerifier(read_factory, settings.auth_cache_ttl_s)

    @app.exception_handler(ServiceError)
    async def _service_error(_request: Request, err: ServiceError) -> JSONResponse:
        return JSONResponse({"detail": err.message}, status_code=err.status_code)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, err: RequestValidationError) -> JSONResponse:
        errors = err.errors()
        parts = []
        for e in errors:
            loc = ".".join(str(x) for x in e.get("loc", ()))
            parts.append(f"{loc}: {e.get('msg', 'invalid')}")
        return JSONResponse(
            {
                "detail": "; ".join(parts) or "invalid request",
                # the offending input is not echoed back (it may be huge, or NaN)
                "errors": jsonable_encoder(
                    [{k: e[k] for k in ("type", "loc", "msg") if k in e} for e in errors]
                ),
            },
            status_code=422,
        )

    @app.get("/v1/health", response_model=ServiceHealth, tags=["service"])
    def service_health() -> ServiceHealth:
        """Liveness: the database answers. No API key needed."""
        with engines.read.connect() as conn:
            conn.execute(text("SELECT 1"))
            conn.rollback()
        return ServiceHealth(status="ok", database=engines.read.dialect.name)

    for module in (experiments, decisions, rewards, insights):
        app.include_router(module.router)
    return app


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
