"""``bandit-fusion demo``: the main job on the embedded default (SQLite, synthetic clicks)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app


def test_demo_runs_live_allocation_on_sqlite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BANDIT_FUSION_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "demo.db"
    result = CliRunner().invoke(
        app, ["demo", "--requests", "400", "--batch", "100", "--database", str(db)]
    )
    assert result.exit_code == 0, result.output
    assert "expected regret" in result.output and "arm-4" in result.output
    with sqlite3.connect(db) as conn:
        (decisions,) = conn.execute("select count(*) from decisions").fetchone()
        (rewards,) = conn.execute(
            "select count(*) from rewards where kind != 'decision'"
        ).fetchone()
        (observations,) = conn.execute(  # one learned observation per decision
            "select count(*) from rewards where kind = 'decision' and learned"
        ).fetchone()
    assert decisions == 400 and rewards == 400 and observations == 400


def test_demo_rejects_bad_rates(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["demo", "--rates", "0.1", "--database", str(tmp_path / "x.db")]
    )
    assert result.exit_code != 0
    assert "rates" in result.output
