"""FastAPI dependencies: database session, settings, policy cache and API-key scopes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated, Any, Concatenate, ParamSpec, TypeVar

from fastapi import Depends, HTTPException, Path, Request, Security, status
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker

from service.auth import KeyVerifier, allows
from service.background import BackgroundFailures
from service.policies import PolicyCache
from service.recommenders import Recommender
from service.schemas import KEY_PATTERN
from service.settings import Settings
from service.store.keys import KeyInfo

P = ParamSpec("P")
T = TypeVar("T")

bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <API key>")
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)


def get_session(request: Request) -> Iterator[Session]:
    """A session for a route that writes (commits itself; the rest is rolled back)."""
    with request.app.state.sessionmaker() as session:
        try:
            yield session
        finally:
            session.rollback()  # anything a route did not commit is discarded


def get_read_session(request: Request) -> Iterator[Session]:
    """A session for a read-only route: on SQLite it never takes the write lock."""
    with request.app.state.read_sessionmaker() as session:
        try:
            yield session
        finally:
            session.rollback()


async def in_read_session(
    request: Request,
    fn: Callable[Concatenate[Session, P], T],
    *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    """``fn(session, *args, **kwargs)`` on a read-only session, in **one** threadpool call.

    For the read routes that dashboards poll: a sync session dependency plus a sync route
    cost three thread hops per request (enter, route, exit); an async route calling this
    costs one."""
    factory: sessionmaker[Session] = request.app.state.read_sessionmaker

    def run() -> T:
        with factory() as session:
            try:
                return fn(session, *args, **kwargs)
            finally:
                session.rollback()

    return await run_in_threadpool(run)


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_sessionmaker(request: Request) -> sessionmaker[Session]:
    factory: sessionmaker[Session] = request.app.state.sessionmaker
    return factory


async def get_cache(request: Request) -> PolicyCache:
    cache: PolicyCache = request.app.state.policy_cache
    return cache


#: The experiment key in a URL; one that no experiment could have is a 422.
KeyPath = Annotated[str, Path(pattern=KEY_PATTERN, description="The experiment's key.")]

SessionDep = Annotated[Session, Depends(get_session)]
ReadSessionDep = Annotated[Session, Depends(get_read_session)]
# For the hot paths: an async route that opens its session inside one threadpool call
# (a sync session dependency plus a sync route cost several thread hops per request).
SessionmakerDep = Annotated[sessionmaker[Session], Depends(get_sessionmaker)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
CacheDep = Annotated[PolicyCache, Depends(get_cache)]


async def get_models(request: Request) -> dict[str, Recommender]:
    models: dict[str, Recommender] = request.app.state.models
    return models


#: The recommenders loaded at start-up, by name.
ModelsDep = Annotated[dict[str, Recommender], Depends(get_models)]


async def get_failures(request: Request) -> BackgroundFailures:
    failures: BackgroundFailures = request.app.state.background_failures
    return failures


FailuresDep = Annotated[BackgroundFailures, Depends(get_failures)]


def require(scope: str) -> Callable[..., Any]:
    """A dependency that admits API keys whose scope covers ``scope``."""

    async def check(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
        header_key: Annotated[str | None, Security(api_key_header)],
    ) -> KeyInfo:
        raw = credentials.credentials if credentials is not None else header_key
        if not raw:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
                headers={"WWW-Authenticate": "Bearer"},
            )
        verifier: KeyVerifier = request.app.state.key_verifier
        # cache hit: no I/O, no thread hop; miss: one query in the threadpool
        key = verifier.cached(raw) or await run_in_threadpool(verifier.verify, raw)
        if key is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "invalid or revoked API key",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not allows(key, scope):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"this API key has scope {key.scope!r}; this operation needs {scope!r}",
            )
        experiment = request.path_params.get("key")
        if experiment is not None and not key.covers(experiment):
            raise HTTPException(status.HTTP_403_FORBIDDEN, not_covered(key, experiment))
        return key

    return check


def not_covered(key: KeyInfo, experiment: str) -> str:
    """The 403 message for a key limited to other experiments."""
    listed = ", ".join(key.experiments or ())
    return f"this API key is limited to the experiments {listed}; not {experiment!r}"


AdminKey = Annotated[KeyInfo, Depends(require("admin"))]
WriteKey = Annotated[KeyInfo, Depends(require("write"))]
ReadKey = Annotated[KeyInfo, Depends(require("read"))]
