"""Start ``bandit-fusion serve`` as a child process on loopback, for tests and benchmarks.

One helper for everything that needs a real server (several worker processes, several
replicas on one database, load tests): it picks a free port, passes the store's settings
through ``BANDIT_FUSION_*`` variables (and only those: inherited ``BANDIT_FUSION_*``
variables are dropped, so a developer's ``.env``-style exports never leak in), starts
``python -m cli.main serve --no-migrate`` and waits until ``/v1/health`` answers 200.
The CLI is run as a program, not imported, so ``service`` still never imports ``cli``.

>>> env = server_env(Settings(_env_file=None, sqlite_path="x.db"), settle_interval_s=0)
>>> env["BANDIT_FUSION_SQLITE_PATH"], env["BANDIT_FUSION_SETTLE_INTERVAL_S"]
('x.db', '0')
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from service.settings import Settings

__all__ = ["ServerProcess", "free_port", "running_server", "server_env"]

#: Folder from which ``python -m cli.main`` is run: the source checkout, or site-packages.
PACKAGE_ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(settings: Settings, **overrides: object) -> dict[str, str]:
    """This process's environment without ``BANDIT_FUSION_*``, plus the store of ``settings``.

    ``overrides`` are further settings by field name (``settle_interval_s=0``); each becomes
    ``BANDIT_FUSION_<NAME>``.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("BANDIT_FUSION_")}
    if settings.is_sqlite:
        env["BANDIT_FUSION_SQLITE_PATH"] = str(settings.sqlite_path)
    else:
        env["BANDIT_FUSION_DATABASE_URL"] = settings.url
        if settings.database_schema:
            env["BANDIT_FUSION_DATABASE_SCHEMA"] = settings.database_schema
    for name, value in overrides.items():
        env[f"BANDIT_FUSION_{name.upper()}"] = str(value)
    return env


@dataclass(frozen=True)
class ServerProcess:
    """A running server: its process, port and log file."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        """What the server has written to stdout and stderr so far."""
        return self.log_path.read_text(errors="replace")


def _wait_healthy(server: ServerProcess, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"server on port {server.port} exited with {server.process.returncode}:\n"
                + server.log()[-4000:]
            )
        try:
            if httpx.get(f"{server.base_url}/v1/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"server on port {server.port} not healthy after {timeout_s:.0f} s:\n"
                + server.log()[-4000:]
            )
        time.sleep(0.2)


@contextmanager
def running_server(
    settings: Settings,
    log_path: Path,
    *,
    workers: int = 1,
    port: int | None = None,
    timeout_s: float = 180.0,
    **overrides: object,
) -> Iterator[ServerProcess]:
    """Run ``bandit-fusion serve`` on ``settings``' store (already migrated) until the block ends.

    Parameters
    ----------
    settings
        The store to serve; the schema must exist (``service.db.upgrade``).
    log_path
        File receiving the server's output (read it with :meth:`ServerProcess.log`).
    workers
        uvicorn worker processes.
    port
        Port on 127.0.0.1 (default: a free one).
    timeout_s
        How long to wait for ``/v1/health``; a server that exits or stays unhealthy raises
        ``RuntimeError`` with the end of its log.
    overrides
        Further settings passed as ``BANDIT_FUSION_*`` variables (see :func:`server_env`).
    """
    port = free_port() if port is None else port
    command = [sys.executable, "-m", "cli.main", "serve", "--no-migrate"]
    command += ["--workers", str(workers), "--port", str(port), "--log-level", "warning"]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
            command,
            cwd=PACKAGE_ROOT,
            env=server_env(settings, **overrides),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        server = ServerProcess(process, port, Path(log_path))
        try:
            _wait_healthy(server, timeout_s)
            yield server
        finally:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
