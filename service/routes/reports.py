"""``/dashboard/reports``: simulation and replay reports as pages (read sessions).

The folder comes from the ``reports_dir`` setting (``bandit-fusion serve --reports DIR``);
requests only name a report and a file in it, checked by :mod:`service.web_reports`. HTML
plots (self-contained Plotly files) are served with a ``sandbox`` Content-Security-Policy:
their scripts run in an opaque origin that can read neither the dashboard nor its cookie.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import FileResponse, Response

from service.routes.dashboard import HEADERS, _page, _to_login, _viewer
from service.web_reports import (
    SUFFIXES,
    list_reports,
    load_summary,
    report_dir,
    report_file,
)

router = APIRouter(prefix="/dashboard/reports", include_in_schema=False)

#: Headers of a report's own HTML: sandboxed (opaque origin), framable by the dashboard only.
SANDBOX = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "SAMEORIGIN",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "sandbox allow-scripts; default-src 'none'; "
    "script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; "
    "img-src data: blob:; font-src data:; frame-ancestors 'self'",
}


def _root(request: Request) -> Path | None:
    root: Path | None = request.app.state.settings.reports_dir
    return root


@router.get("")
def reports_page(request: Request) -> Response:
    """The reports under ``reports_dir``, newest first."""
    viewer = _viewer(request)
    if viewer is None:
        return _to_login()
    root = _root(request)
    reports = list_reports(root) if root is not None else []
    context = {"viewer": viewer, "configured": root is not None, "reports": reports}
    return _page(request, "reports.html", context)


@router.get("/{name}")
def report_page(name: str, request: Request) -> Response:
    """One report: its summary as tables (and raw), its images and its interactive plots."""
    viewer = _viewer(request)
    if viewer is None:
        return _to_login()
    root = _root(request)
    folder = report_dir(root, name) if root is not None else None
    if folder is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no report {name!r}")
    data, tables, note = load_summary(folder)
    report = next(r for r in list_reports(root) if r.name == name) if root else None
    context = {
        "viewer": viewer,
        "report": report,
        "summary": data,
        "tables": tables,
        "note": note,
    }
    return _page(request, "report.html", context)


@router.get("/{name}/files/{file}")
def report_file_download(name: str, file: str, request: Request) -> Response:
    """A file of a report (HTML sandboxed; see the module doc)."""
    if _viewer(request) is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "log in at /dashboard/login first")
    root = _root(request)
    path = report_file(root, name, file) if root is not None else None
    if path is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no file {file!r} in report {name!r}")
    suffix = path.suffix.lower()
    headers = SANDBOX if suffix == ".html" else {**HEADERS, "Cache-Control": "no-store"}
    return FileResponse(path, media_type=SUFFIXES[suffix], headers=headers)
