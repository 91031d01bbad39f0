"""CLI errors end in one line that says what to fix, exit code 2, no traceback unless --debug."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from cli.errors import describe
from cli.main import app

ROOT = Path(__file__).resolve().parents[2]
REFUSED = "postgresql+psycopg://postgres@127.0.0.1:1/bandits"  # nothing listens on port 1
runner = CliRunner()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No BANDIT_FUSION_* from the caller, and no .env file in the working directory."""
    for name in list(os.environ):
        if name.startswith("BANDIT_FUSION_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def _one_line(result) -> str:
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert "Traceback" not in result.output
    return lines[0]


@pytest.mark.parametrize(
    "args",
    [
        ["db", "upgrade"],
        ["keys", "list"],
        ["keys", "create", "--scope", "admin"],
        ["keys", "revoke", "abcdefgh"],
        ["rebuild", "--all"],
        ["serve", "--no-migrate"],
        ["serve"],
    ],
)
def test_every_database_command_reports_an_unreachable_server(monkeypatch, args) -> None:
    monkeypatch.setenv("BANDIT_FUSION_DATABASE_URL", REFUSED)
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    line = _one_line(result)
    assert line == (
        "error: cannot reach the database server at 127.0.0.1:1 (connection refused): "
        "start it or fix the host and port in BANDIT_FUSION_DATABASE_URL"
    )


@pytest.mark.postgres
def test_missing_postgres_database_names_it_and_the_variable(monkeypatch) -> None:
    from tests.service.conftest import PG_URL, require_pg

    require_pg()
    name = f"bf_missing_{uuid.uuid4().hex[:8]}"
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    monkeypatch.setenv("BANDIT_FUSION_DATABASE_URL", url)
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 2, result.output
    assert _one_line(result) == (
        f'error: database "{name}" does not exist: create it or fix BANDIT_FUSION_DATABASE_URL'
    )


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"BANDIT_FUSION_DATABASE_URL": "not a url"},
            "error: BANDIT_FUSION_DATABASE_URL is not a database URL: use postgresql+psycopg://",
        ),
        (
            {"BANDIT_FUSION_DATABASE_URL": "mongodb://db/x"},
            "error: BANDIT_FUSION_DATABASE_URL names an unknown database kind 'mongodb'",
        ),
        (
            {"BANDIT_FUSION_DATABASE_URL": "postgresql+psycopg://postgres@nohost.invalid/x"},
            'error: unknown database host "nohost.invalid": fix the host in '
            "BANDIT_FUSION_DATABASE_URL",
        ),
        (
            {"BANDIT_FUSION_SQLITE_PATH": "no/such/folder/x.db"},
            "error: cannot open the SQLite file: create its folder or fix "
            "BANDIT_FUSION_SQLITE_PATH",
        ),
        (
            {"BANDIT_FUSION_PORT": "eighty"},
            "error: invalid settings: BANDIT_FUSION_PORT: Input should be a valid integer",
        ),
        (
            {"BANDIT_FUSION_ENVIRONMENT": "production"},
            "error: invalid settings: environment is 'production' but "
            "BANDIT_FUSION_DATABASE_URL is unset",
        ),
    ],
)
def test_configuration_errors_say_what_to_fix(monkeypatch, env, expected) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 2, result.output
    assert _one_line(result).startswith(expected)


def test_store_without_tables_asks_for_db_upgrade(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("BANDIT_FUSION_SQLITE_PATH", str(tmp_path / "empty.db"))
    result = runner.invoke(app, ["keys", "list"])
    assert result.exit_code == 2, result.output
    assert _one_line(result) == (
        "error: the database has no bandit-fusion tables: run 'bandit-fusion db upgrade'"
    )
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    assert runner.invoke(app, ["keys", "list"]).exit_code == 0


def test_unknown_migration_revision(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("BANDIT_FUSION_SQLITE_PATH", str(tmp_path / "x.db"))
    result = runner.invoke(app, ["db", "upgrade", "nope"])
    assert result.exit_code == 2, result.output
    assert _one_line(result).startswith("error: database migration: Can't locate revision")


def test_debug_lets_the_exception_through(monkeypatch) -> None:
    from sqlalchemy.exc import OperationalError

    monkeypatch.setenv("BANDIT_FUSION_DATABASE_URL", REFUSED)
    result = runner.invoke(app, ["--debug", "db", "upgrade"])
    assert result.exit_code == 1
    assert isinstance(result.exception, OperationalError)


def test_unexpected_errors_are_one_line_with_exit_code_1(monkeypatch, tmp_path) -> None:
    import service.db

    def broken(*args, **kwargs):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setenv("BANDIT_FUSION_SQLITE_PATH", str(tmp_path / "x.db"))
    monkeypatch.setattr(service.db, "upgrade", broken)
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 1
    assert _one_line(result) == (
        "error: unexpected error: RuntimeError: boom second line "
        "(rerun with --debug for the traceback)"
    )


def test_a_real_process_prints_one_line_on_stderr(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BANDIT_FUSION_")}
    env["BANDIT_FUSION_DATABASE_URL"] = REFUSED
    proc = subprocess.run(
        [sys.executable, "-m", "cli.main", "keys", "list"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        "error: cannot reach the database server at 127.0.0.1:1 (connection refused): "
        "start it or fix the host and port in BANDIT_FUSION_DATABASE_URL"
    ]


def test_unknown_arm_parameter_names_it_and_the_valid_ones(tmp_path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    args = ["arms", "train", "--data", str(data), "--out", str(tmp_path / "out")]
    result = runner.invoke(app, [*args, "--param", "item-knn.neighbors=50"])
    assert result.exit_code == 2, result.output
    line = _one_line(result)
    assert "'--param'" in line
    assert "item-knn has no parameter neighbors; it takes " in line
    assert "neighbours" in line.split("it takes", 1)[1]
    result = runner.invoke(app, [*args, "--arms", "mf", "--param", "item-knn.neighbours=5"])
    assert result.exit_code == 2
    assert "'item-knn' is not among the arms trained (mf)" in _one_line(result)


@pytest.mark.parametrize(
    ("args", "option", "detail"),
    [
        (["--means", "0.2-0.8"], "'--means'", "got '0.2-0.8'"),
        (["--means", "0.2:1.8", "--arms", "3"], "'--means'", "must lie in [0, 1]"),
        (
            ["--env", "gaussian", "--sigma", "-1", "--policies", "gaussian-thompson"],
            "'--sigma'",
            "sigma must be positive",
        ),
        (["--env", "nope"], "'--env'", "unknown environment 'nope'"),
    ],
)
def test_simulate_names_the_option_in_one_line(tmp_path, args, option, detail) -> None:
    result = runner.invoke(app, ["simulate", *args, "--out", str(tmp_path / "o")])
    assert result.exit_code == 2, result.output
    line = _one_line(result)
    assert line.startswith(f"error: Invalid value for {option}: ")
    assert detail in line
    assert line.endswith("(see 'bandit-fusion simulate --help')") or "simulate --help" in line


def test_describe_connection_and_environment_errors() -> None:
    from alembic.util.exc import CommandError

    request = httpx.Request("GET", "http://127.0.0.1:9/v1/health")
    err = describe(httpx.ConnectError("[Errno 111] Connection refused", request=request))
    assert err.exit_code == 2
    assert err.message.startswith("cannot reach http://127.0.0.1:9/v1/health (")
    assert err.message.endswith("): start the server or fix its URL")
    missing = ModuleNotFoundError("No module named 'ray'", name="ray")
    assert describe(missing).message == (
        "the Python package 'ray' is not installed: pip install 'bandit-fusion[ray]'"
    )
    busy = OSError(errno.EADDRINUSE, "Address already in use")
    assert describe(busy).message == "Address already in use: choose another --port"
    assert describe(CommandError("bad")).message == "database migration: bad"
    assert describe(FileNotFoundError(2, "No such file or directory", "x.csv")).message == (
        "No such file or directory: x.csv"
    )
    assert describe(ValueError("horizon must be at least 1")).exit_code == 2
    assert describe(TypeError("bug")).exit_code == 1


def test_docstring_examples() -> None:
    import doctest

    import cli.errors

    assert doctest.testmod(cli.errors).failed == 0
