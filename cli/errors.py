"""One-line errors for every ``bandit-fusion`` command: what went wrong and what to fix.

:class:`ErrorReportingGroup` is the click group of the top-level app. Every command (and
every sub-group) runs inside its :meth:`~ErrorReportingGroup.invoke`, so an exception a
command does not handle itself -- a wrong database URL, an unreachable server, bad
settings, a bad option value -- ends as one line on stderr and an exit code, without a
traceback, whichever module defines the command:

* exit code 2: the user can fix it (configuration, connection, input; :func:`describe`);
* exit code 1: anything else, reported as ``unexpected error: ...``.

``bandit-fusion --debug COMMAND`` lets the exception through with its traceback.
Only the standard library and Typer are imported at module level; the database and HTTP
libraries are looked up only when an error has to be described. Typer's usage errors are
recognised by their interface (``format_message``, ``exit_code``), which holds whether Typer
brings click or its own copy of it.
"""

from __future__ import annotations

import errno
import re
from dataclasses import dataclass
from typing import Any

import typer
from typer.core import TyperGroup

__all__ = ["CliError", "ErrorReportingGroup", "describe"]

URL_VAR = "BANDIT_FUSION_DATABASE_URL"
SQLITE_VAR = "BANDIT_FUSION_SQLITE_PATH"
DEBUG_HINT = "rerun with --debug for the traceback"


@dataclass(frozen=True)
class CliError:
    """What to print (one line) and the exit code."""

    message: str
    exit_code: int = 2


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _describe_database(exc: Exception) -> CliError | None:
    """SQLAlchemy errors: bad URL, unknown dialect, missing database, unreachable server."""
    try:
        from sqlalchemy import exc as sa_exc
    except ImportError:  # pragma: no cover - SQLAlchemy is a dependency
        return None
    if isinstance(exc, sa_exc.NoSuchModuleError):
        dialect = str(exc).rsplit(":", 1)[-1].strip()
        return CliError(
            f"{URL_VAR} names an unknown database kind {dialect!r}: use "
            "postgresql+psycopg://user:password@host:5432/dbname or sqlite:///path/to/file.db"
        )
    if isinstance(exc, sa_exc.ArgumentError) and "URL" in str(exc):
        return CliError(
            f"{URL_VAR} is not a database URL: use "
            "postgresql+psycopg://user:password@host:5432/dbname or sqlite:///path/to/file.db"
        )
    if not isinstance(exc, sa_exc.DBAPIError):
        return None
    text = _one_line(str(exc.orig) if exc.orig is not None else str(exc))
    server = re.search(r'server at "([^"]+)", port (\d+)', text)
    where = f" at {server[1]}:{server[2]}" if server else ""
    if m := re.search(r'database "([^"]+)" does not exist', text):
        return CliError(f'database "{m[1]}" does not exist: create it or fix {URL_VAR}')
    if m := re.search(r'role "([^"]+)" does not exist', text):
        return CliError(f'database user "{m[1]}" does not exist: create it or fix {URL_VAR}')
    if m := re.search(r'authentication failed for user "([^"]+)"', text):
        return CliError(f'the database refused user "{m[1]}": fix the password in {URL_VAR}')
    if "no password supplied" in text:
        return CliError(f"the database asks for a password: add it to {URL_VAR}")
    if m := re.search(r"resolve host '([^']+)'|translate host name \"([^\"]+)\"", text):
        return CliError(f'unknown database host "{m[1] or m[2]}": fix the host in {URL_VAR}')
    if "Connection refused" in text or "could not connect" in text:
        why = " (connection refused)" if "Connection refused" in text else ""
        return CliError(
            f"cannot reach the database server{where}{why}: start it or fix "
            f"the host and port in {URL_VAR}"
        )
    if "timeout expired" in text or "timed out" in text:
        return CliError(
            f"the database server{where} did not answer in time: check that it is up, or fix "
            f"the host and port in {URL_VAR}"
        )
    if "unable to open database file" in text:
        return CliError(
            f"cannot open the SQLite file: create its folder or fix {SQLITE_VAR} (or {URL_VAR})"
        )
    if re.search(r'relation "[^"]+" does not exist|no such table', text):
        return CliError("the database has no bandit-fusion tables: run 'bandit-fusion db upgrade'")
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError):
        return CliError(f"database error: {text}")
    return None


def _describe_settings(exc: Exception) -> CliError | None:
    """A pydantic ``ValidationError`` of :class:`service.settings.Settings`."""
    try:
        from pydantic import ValidationError
    except ImportError:  # pragma: no cover - pydantic is a dependency
        return None
    if not isinstance(exc, ValidationError) or exc.title != "Settings":
        return None
    parts = []
    for error in exc.errors(include_url=False):
        msg = str(error.get("msg", "")).removeprefix("Value error, ")
        loc = ".".join(str(x) for x in error.get("loc", ()))
        if loc:
            got = error.get("input")
            shown = f" (got {got!r})" if isinstance(got, str | int | float) else ""
            parts.append(f"BANDIT_FUSION_{loc.upper()}: {msg}{shown}")
        else:
            parts.append(msg)
    return CliError("invalid settings: " + _one_line("; ".join(parts)))


def _describe_http(exc: Exception) -> CliError | None:
    """httpx connection errors (commands that talk to a running server)."""
    try:
        import httpx
    except ImportError:  # pragma: no cover - httpx is a dependency
        return None
    if isinstance(exc, httpx.ConnectError | httpx.TimeoutException):
        try:
            url = str(exc.request.url)
        except RuntimeError:
            url = "the server"
        reason = "timed out" if isinstance(exc, httpx.TimeoutException) else _one_line(str(exc))
        return CliError(f"cannot reach {url} ({reason}): start the server or fix its URL")
    return None


def _describe_other(exc: Exception) -> CliError | None:
    from alembic.util.exc import CommandError

    if isinstance(exc, CommandError):
        return CliError(f"database migration: {_one_line(str(exc))}")
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        root = exc.name.split(".")[0]
        extra = {"ray": "pip install 'bandit-fusion[ray]'"}.get(root, f"pip install {root}")
        return CliError(f"the Python package {root!r} is not installed: {extra}")
    if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
        return CliError(f"{_one_line(exc.strerror or str(exc))}: choose another --port")
    if isinstance(
        exc,
        FileNotFoundError
        | FileExistsError
        | PermissionError
        | IsADirectoryError
        | NotADirectoryError,
    ):
        if exc.filename is not None:
            return CliError(f"{exc.strerror or type(exc).__name__}: {exc.filename}")
        return CliError(_one_line(str(exc)))
    if isinstance(exc, ValueError):
        return CliError(_one_line(str(exc)) or type(exc).__name__)
    return None


def _is_usage_error(exc: BaseException) -> bool:
    """click's (or Typer's copy of click's) ``ClickException``: bad options and arguments."""
    return hasattr(exc, "format_message") and isinstance(getattr(exc, "exit_code", None), int)


def describe(exc: BaseException) -> CliError:
    """The one-line message and exit code for an exception a command let through.

    >>> describe(ValueError("means must lie in [0, 1]"))
    CliError(message='means must lie in [0, 1]', exit_code=2)
    >>> describe(KeyError("x")).exit_code
    1
    """
    if _is_usage_error(exc):
        message = _one_line(exc.format_message())  # type: ignore[attr-defined]
        # BadParameter (an option's value) reads "Invalid value for '--x': ..."
        ctx = getattr(exc, "ctx", None)
        if ctx is not None:
            message += f" (see '{ctx.command_path} --help')"
        return CliError(message, int(exc.exit_code))  # type: ignore[attr-defined]
    if isinstance(exc, Exception):
        for describer in (_describe_settings, _describe_database, _describe_http, _describe_other):
            found = describer(exc)
            if found is not None:
                return found
    detail = _one_line(str(exc))
    return CliError(
        f"unexpected error: {type(exc).__name__}{': ' + detail if detail else ''} ({DEBUG_HINT})",
        1,
    )


def _passes_through(exc: BaseException) -> bool:
    """Typer's own control flow: exits, aborts and "no arguments: show the help"."""
    return isinstance(exc, typer.Exit | typer.Abort) or type(exc).__name__ == "NoArgsIsHelpError"


class ErrorReportingGroup(TyperGroup):
    """The top-level group: runs the command and turns what escapes it into one line."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as exc:
            if _passes_through(exc) or ctx.params.get("debug"):
                raise
            error = describe(exc)
            typer.secho(f"error: {error.message}", fg=typer.colors.RED, err=True)
            raise typer.Exit(error.exit_code) from None
