"""``/dashboard``: server-rendered experiment pages for people (read-only by default).

Reading needs a session: ``POST /dashboard/login`` exchanges an API key (read scope or more)
for an HTTP-only, ``SameSite=Strict`` cookie (:mod:`service.web_session`); the key never
appears in a URL or a page. Pause, resume and stop are offered to admin sessions only and
need the session's CSRF token. Plotly.js is served from the installed ``plotly`` package.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs

import plotly
from fastapi import APIRouter, FastAPI, HTTPException, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from service.auth import allows
from service.deps import KeyPath
from service.settings import Settings
from service.store import dashboard as views
from service.store import experiments as experiment_store
from service.store import insights
from service.store.keys import KeyInfo, active_key, verify_api_key
from service.store.sealed_counts import SealedCounts
from service.web_charts import chart_data, series_csv
from service.web_counterfactual import CounterfactualCache
from service.web_panels import experiment_panels
from service.web_session import (
    COOKIE,
    LOGIN_COOKIE,
    LOGIN_LIFETIME_S,
    SessionSigner,
    SessionToken,
)
from service.web_views import WINNER_PROB_BEST, age, arms_csv, health_verdict

HERE = Path(__file__).resolve().parent.parent
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
STATIC = {
    "dashboard.js": HERE / "static" / "dashboard.js",
    "dashboard.css": HERE / "static" / "dashboard.css",
    "panels.js": HERE / "static" / "panels.js",
    "panels.css": HERE / "static" / "panels.css",
}
STATUSES = ("active", "paused", "stopped")
ACTIONS = ("pause", "resume", "stop")
HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
}

templates = Jinja2Templates(directory=str(HERE / "templates"))
router = APIRouter(prefix="/dashboard", include_in_schema=False)


def install(app: FastAPI, settings: Settings) -> None:
    """Add the dashboard to ``app``: its session signer and its routes."""
    secret = settings.dashboard_secret
    raw = secret.get_secret_value().encode() if secret else secrets.token_bytes(32)
    app.state.session_signer = SessionSigner(raw, settings.dashboard_session_s)
    # panels (service.web_panels); evaluated off the page's path, on read-only sessions
    app.state.counterfactual_cache = CounterfactualCache(app.state.read_sessionmaker)
    app.include_router(router)
    from service.routes import reports  # imports this module: installed after it

    app.include_router(reports.router)


@dataclass(frozen=True)
class Viewer:
    """The person behind a valid session: the key they logged in with, and their CSRF token."""

    key: KeyInfo
    token: SessionToken
    csrf: str

    @property
    def admin(self) -> bool:
        return allows(self.key, "admin")


def _signer(request: Request) -> SessionSigner:
    signer: SessionSigner = request.app.state.session_signer
    return signer


def _viewer(request: Request) -> Viewer | None:
    """The session's viewer, or None (no cookie, bad signature, expired, key revoked)."""
    signer = _signer(request)
    token = signer.verify(request.cookies.get(COOKIE))
    if token is None:
        return None
    with request.app.state.read_sessionmaker() as session:
        key = active_key(session, token.key_id)
        session.rollback()
    if key is None or not allows(key, "read"):
        return None
    return Viewer(key, token, signer.csrf(token))


def _page(request: Request, name: str, context: dict[str, Any], code: int = 200) -> Response:
    return templates.TemplateResponse(request, name, context, status_code=code, headers=HEADERS)


def _to_login() -> Response:
    return RedirectResponse("/dashboard/login", status.HTTP_303_SEE_OTHER, headers=HEADERS)


async def _form(request: Request) -> dict[str, str]:
    """An urlencoded form body as a dict (first value of each field)."""
    body = (await request.body()).decode("utf-8", errors="replace")
    try:
        fields = parse_qs(body, max_num_fields=20)
    except ValueError as err:  # too many fields
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "form: too many fields") from err
    return {k: v[0] for k, v in fields.items()}


def _check_covers(viewer: Viewer, key: str) -> None:
    if not viewer.key.covers(key):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"this session may not see {key!r}")


@router.get("/static/plotly.min.js")
def plotly_js() -> FileResponse:
    """Plotly.js from the installed plotly package (no CDN); cached for a day."""
    return FileResponse(
        PLOTLY_JS, media_type="text/javascript", headers={"Cache-Control": "public, max-age=86400"}
    )


@router.get("/static/{name}")
def static_file(name: str) -> FileResponse:
    if name not in STATIC:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such file")
    kind = "text/javascript" if name.endswith(".js") else "text/css"
    return FileResponse(STATIC[name], media_type=kind, headers={"Cache-Control": "no-cache"})


def _login_page(request: Request, error: str | None, code: int = 200) -> Response:
    """The login form with its CSRF token, and the login cookie that token matches."""
    signer = _signer(request)
    nonce = signer.login_nonce(request.cookies.get(LOGIN_COOKIE))
    context = {"error": error, "csrf": signer.login_csrf(nonce)}
    response = _page(request, "login.html", context, code)
    response.set_cookie(
        LOGIN_COOKIE,
        nonce,
        max_age=LOGIN_LIFETIME_S,
        path="/dashboard/login",
        httponly=True,
        samesite="strict",
        secure=request.app.state.settings.environment == "production",
    )
    return response


@router.get("/login")
def login_page(request: Request) -> Response:
    return _login_page(request, None)


@router.post("/login")
async def login(request: Request) -> Response:
    """Exchange an API key (read scope or more) for a session cookie; the form's CSRF token
    must match the login cookie set with the form."""
    form = await _form(request)
    if not _signer(request).login_ok(request.cookies.get(LOGIN_COOKIE), form.get("csrf")):
        return _login_page(request, "The login form expired or came from elsewhere: retry.", 403)
    raw = form.get("key", "").strip()
    key = await run_in_threadpool(_verify, request, raw) if raw and len(raw) <= 200 else None
    if key is None:
        return _login_page(request, "Unknown or revoked API key.", 401)
    settings: Settings = request.app.state.settings
    response = RedirectResponse("/dashboard", status.HTTP_303_SEE_OTHER, headers=HEADERS)
    response.set_cookie(
        COOKIE,
        _signer(request).issue(key.id),
        max_age=settings.dashboard_session_s,
        path="/dashboard",
        httponly=True,
        samesite="strict",
        secure=settings.environment == "production",
    )
    response.delete_cookie(LOGIN_COOKIE, path="/dashboard/login", httponly=True, samesite="strict")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    """End the session: the cookie is cleared and its nonce refused (see web_session)."""
    viewer = await run_in_threadpool(_viewer, request)
    if viewer is not None:
        if not _signer(request).csrf_ok(viewer.token, (await _form(request)).get("csrf")):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "missing or wrong CSRF token")
        _signer(request).revoke(viewer.token)
    response = _to_login()
    response.delete_cookie(COOKIE, path="/dashboard", httponly=True, samesite="strict")
    return response


@router.get("")
def experiments_page(
    request: Request, status_filter: Annotated[str | None, Query(alias="status")] = None
) -> Response:
    """Experiments list, newest first; ``?status=active|paused|stopped`` filters."""
    viewer = _viewer(request)
    if viewer is None:
        return _to_login()
    if status_filter not in (None, "", *STATUSES):
        raise HTTPException(422, f"status must be one of {', '.join(STATUSES)}")
    with request.app.state.read_sessionmaker() as session:
        rows = views.experiment_rows(
            session, status_filter or None, viewer.key.experiments, sealed=_sealed(request)
        )
        session.rollback()
    return _page(
        request,
        "experiments.html",
        {
            "viewer": viewer,
            "rows": rows,
            "statuses": STATUSES,
            "current": status_filter or "",
            "age": age,
        },
    )


@router.get("/experiments/{key}")
def experiment_page(key: KeyPath, request: Request) -> Response:
    """Leaderboard, health and charts of one experiment."""
    viewer = _viewer(request)
    if viewer is None:
        return _to_login()
    _check_covers(viewer, key)
    failures = request.app.state.background_failures
    with request.app.state.read_sessionmaker() as session:
        exp = experiment_store.get_experiment(session, key)
        stats, health = insights.stats_and_health(session, key, failures.get(key), _sealed(request))
        series = views.time_series(session, key, stats, sealed=_sealed(request))
        panels = experiment_panels(session, key, stats, request.app.state.counterfactual_cache)
        session.rollback()
    chart = chart_data(series)
    return _page(
        request,
        "experiment.html",
        {
            "viewer": viewer,
            "exp": exp,
            "stats": stats,
            "health": health,
            "verdict": health_verdict(health),
            "winner_at": WINNER_PROB_BEST,
            "chart": chart,
            "max_points": views.MAX_POINTS,
            "age": age,
            "actions": ACTIONS,
            "panels": panels,
        },
    )


@router.get("/experiments/{key}/arms.csv")
def arms_csv_download(key: KeyPath, request: Request) -> Response:
    """The per-arm table (same numbers as ``/v1/experiments/{key}/stats``) as CSV."""
    _reader_of(request, key)
    with request.app.state.read_sessionmaker() as session:
        stats = insights.experiment_stats(session, key, sealed=_sealed(request))
        session.rollback()
    return _csv(arms_csv(stats), f"{key}-arms.csv")


@router.get("/experiments/{key}/series.csv")
def series_csv_download(key: KeyPath, request: Request) -> Response:
    """The time series of the charts (one row per drawn policy update and arm) as CSV."""
    _reader_of(request, key)
    with request.app.state.read_sessionmaker() as session:
        stats = insights.experiment_stats(session, key, sealed=_sealed(request))
        series = views.time_series(session, key, stats, sealed=_sealed(request))
        session.rollback()
    return _csv(series_csv(series), f"{key}-series.csv")


def _reader_of(request: Request, key: str) -> Viewer:
    """The session's viewer, who may see experiment ``key`` (401 / 403 otherwise)."""
    viewer = _viewer(request)
    if viewer is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "log in at /dashboard/login first")
    _check_covers(viewer, key)
    return viewer


def _csv(body: str, filename: str) -> Response:
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )


@router.post("/experiments/{key}/{action}")
async def experiment_action(key: KeyPath, action: str, request: Request) -> Response:
    """Pause, resume or stop: an admin session and its CSRF token only."""
    if action not in ACTIONS:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no action {action!r}")
    viewer = await run_in_threadpool(_viewer, request)
    if viewer is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "log in at /dashboard/login first")
    if not viewer.admin:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, f"a {viewer.key.scope} session cannot {action}"
        )
    _check_covers(viewer, key)
    if not _signer(request).csrf_ok(viewer.token, (await _form(request)).get("csrf")):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "missing or wrong CSRF token")
    await run_in_threadpool(_set_status, request, key, action)
    return RedirectResponse(
        f"/dashboard/experiments/{key}", status.HTTP_303_SEE_OTHER, headers=HEADERS
    )


def _verify(request: Request, raw: str) -> KeyInfo | None:
    with request.app.state.read_sessionmaker() as session:
        key = verify_api_key(session, raw)
        session.rollback()
    return key


def _set_status(request: Request, key: str, action: str) -> None:
    with request.app.state.sessionmaker() as session:
        experiment_store.set_status(session, key, action)


def _sealed(request: Request) -> SealedCounts:
    """The process's final decision counts of the past (:mod:`service.store.sealed_counts`)."""
    sealed: SealedCounts = request.app.state.sealed_counts
    return sealed
