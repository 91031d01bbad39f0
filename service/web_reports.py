"""Simulation and replay reports (output folders of ``bandit-fusion simulate`` / ``replay``)
as dashboard pages: reading one folder named by a setting, never a path from a request.

A report is a sub-folder of ``reports_dir`` holding a ``summary.json``. Requests name a
report and a file by plain names (letters, digits, ``.``, ``_``, ``-``; no separator, no
leading dot); the resolved path must be a regular file directly inside a direct sub-folder
of the resolved ``reports_dir``, and symbolic links are refused, so a request can reach
nothing else. Only the suffixes in :data:`SUFFIXES` are served.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$")
SUMMARY = "summary.json"
#: Suffixes served, with their media types.
SUFFIXES = {
    ".html": "text/html; charset=utf-8",
    ".png": "image/png",
    ".json": "application/json",
    ".csv": "text/csv; charset=utf-8",
}
#: Largest summary rendered on a page (bytes); a larger one is offered as a file only.
MAX_SUMMARY = 2_000_000


@dataclass(frozen=True)
class ReportFile:
    name: str
    size: int
    kind: str  # html | png | json | csv


@dataclass(frozen=True)
class Report:
    """One report folder: its name, when its summary was written and its servable files."""

    name: str
    modified: dt.datetime
    files: list[ReportFile]


@dataclass(frozen=True)
class Table:
    """A list of flat records found in a summary (for example ``results``), as a table."""

    key: str
    columns: list[str]
    rows: list[list[Any]]


def _plain(path: Path) -> bool:
    return not path.is_symlink()


def report_dir(root: Path, name: str) -> Path | None:
    """The folder of report ``name`` under ``root``, or None when it is not a report."""
    if not NAME.match(name) or name in (".", ".."):
        return None
    base = root.resolve()
    folder = base / name
    if not (_plain(folder) and folder.is_dir() and folder.resolve().parent == base):
        return None
    summary = folder / SUMMARY
    return folder if _plain(summary) and summary.is_file() else None


def report_file(root: Path, name: str, file: str) -> Path | None:
    """The file ``file`` of report ``name``, or None (bad name, suffix, link or absent)."""
    folder = report_dir(root, name)
    if folder is None or not NAME.match(file) or Path(file).suffix.lower() not in SUFFIXES:
        return None
    path = folder / file
    if not (_plain(path) and path.is_file() and path.resolve().parent == folder.resolve()):
        return None
    return path


def _files(folder: Path) -> list[ReportFile]:
    out = []
    for p in sorted(folder.iterdir()):
        suffix = p.suffix.lower()
        if NAME.match(p.name) and suffix in SUFFIXES and _plain(p) and p.is_file():
            out.append(ReportFile(p.name, p.stat().st_size, suffix[1:]))
    return out


def list_reports(root: Path, limit: int = 500) -> list[Report]:
    """The reports under ``root``, newest summary first (at most ``limit``)."""
    base = root.resolve()
    if not base.is_dir():
        return []
    found = []
    for child in base.iterdir():
        folder = report_dir(base, child.name)
        if folder is not None:
            stamp = (folder / SUMMARY).stat().st_mtime
            found.append(Report(child.name, dt.datetime.fromtimestamp(stamp, dt.UTC), []))
    found.sort(key=lambda r: r.modified, reverse=True)
    return [Report(r.name, r.modified, _files(base / r.name)) for r in found[:limit]]


def load_summary(folder: Path) -> tuple[Any, list[Table], str | None]:
    """The summary's JSON, its tables, and a note when it cannot be shown on a page."""
    path = folder / SUMMARY
    if path.stat().st_size > MAX_SUMMARY:
        return None, [], f"summary.json is larger than {MAX_SUMMARY:,} bytes: open it as a file."
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        return None, [], f"summary.json is not valid JSON ({err})."
    return data, summary_tables(data), None


def summary_tables(data: Any) -> list[Table]:
    """Every top-level list of objects in ``data`` as a table of its scalar fields."""
    if not isinstance(data, dict):
        return []
    tables = []
    for key, value in data.items():
        if not (isinstance(value, list) and value and all(isinstance(v, dict) for v in value)):
            continue
        columns: list[str] = []
        for record in value:
            for c, v in record.items():
                if c not in columns and (v is None or isinstance(v, str | int | float | bool)):
                    columns.append(c)
        if columns:
            tables.append(Table(key, columns, [[r.get(c) for c in columns] for r in value]))
    return tables
