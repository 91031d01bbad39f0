"""``bandit-fusion demo``: the main job on the embedded default (SQLite, synthetic clicks)."""

from __future__ import annotations

import json
import random
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from service.store import decisions as decision_store


def test_demo_runs_live_allocation_on_sqlite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BANDIT_FUSION_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "demo.db"
    result = CliRunner().invoke(
        app,
        [
            "demo",
            "--mode",
            "allocate",
            "--requests",
            "400",
            "--batch",
            "100",
            "--database",
            str(db),
        ],
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
        app, ["demo", "--mode", "allocate", "--rates", "0.1", "--database", str(tmp_path / "x.db")]
    )
    assert result.exit_code != 0
    assert "rates" in result.output


def test_demo_rejects_unknown_mode(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["demo", "--mode", "blend", "--database", str(tmp_path / "x.db")]
    )
    assert result.exit_code != 0
    assert "fuse or allocate" in result.output
    result = CliRunner().invoke(app, ["demo", "--users", "60", "--batch", "80"])
    assert result.exit_code == 2 and "--users (60)" in result.output


@pytest.mark.slow
def test_demo_fuses_trained_arms_through_the_service(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Generated data, arms trained, a fuse experiment over HTTP: the learned blend wins.

    The service draws each decision's seed from ``secrets``; here they come from a seeded
    generator (the demo's requests are sequential), so the run, and its margins, repeat."""
    gen = random.Random(2026)
    monkeypatch.setattr(decision_store, "new_seed", lambda: gen.getrandbits(63))
    monkeypatch.delenv("BANDIT_FUSION_DATABASE_URL", raising=False)
    monkeypatch.setenv("BANDIT_FUSION_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    db, report = tmp_path / "demo.db", tmp_path / "report.json"
    args = ["demo", "--users", "150", "--items", "300", "--requests", "600", "--batch", "30"]
    args += ["--database", str(db), "--workdir", str(tmp_path / "work"), "--json", str(report)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    out = json.loads(report.read_text())
    assert out["requests"] == 600 and out["audit_equal"] is True
    assert "bandit-fusion rebuild --experiment demo-fuse-" in result.output
    assert "/dashboard/experiments/demo-fuse-" in result.output
    # the service answered from the trained arms' own lists (the counterfactuals use them)
    assert out["agreement"] == 1.0
    cpr = out["clicks_per_request"]
    fused, uniform = cpr["bandit fusion (live service)"], cpr["uniform blend"]
    best = max(v for name, v in cpr.items() if name.endswith(" alone"))
    assert fused > 1.05 * uniform, cpr  # learning the weights beats the equal blend
    assert fused > 0.9 * best, cpr
    final = {arm: w[str(600)] for arm, w in out["weights"].items()}
    assert final["mf"] + final["item-knn"] > 0.9, final  # the weak arms lost their weight
    assert out["slot_share"]["bert"] < 0.1 and out["slot_share"]["popularity"] < 0.1

    with sqlite3.connect(db) as conn:
        (decisions,) = conn.execute("select count(*) from decisions").fetchone()
        lengths = {len(json.loads(r)) for (r,) in conn.execute("select items from decisions")}
        (clicks,) = conn.execute(
            "select count(*) from rewards where kind = 'click' and value > 0 and status = 'learned'"
        ).fetchone()
        (slots,) = conn.execute(
            "select count(*) from rewards where kind = 'decision' and learned"
        ).fetchone()
    assert decisions == 600 and lengths == {10}
    assert clicks == round(fused * 600)  # every click posted by item and learned
    assert slots == 600 * 10  # every shown slot learned once, for its source arm
