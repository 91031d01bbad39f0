"""The decision-log export and its round trip into offline evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from service.errors import NotFound
from service.export import export_log, export_log_from_url, write_export
from simulations.offline import Candidate, evaluate_offline
from simulations.ope import IPS, SNIPS, rows_input
from simulations.service_log import load_service_log


def post_log(api, n: int = 90) -> list[dict]:
    api.experiment(reward={"click": 1, "conversion": 4})
    rng = np.random.default_rng(5)
    click_rate = [0.1, 0.4, 0.7]
    decisions, pending = [], []
    for i in range(n):
        r = api.post(
            "/v1/experiments/exp/decisions",
            {"unit_id": f"u{i}", "served_items": [f"item{i}", "x"] if i % 3 == 0 else None},
            scope="write",
        )
        assert r.status_code == 201, r.text
        d = r.json()
        decisions.append(d)
        if rng.random() < click_rate[d["arm_index"]]:
            pending.append({"decision_id": d["decision_id"], "kind": "click", "reward_id": f"c{i}"})
        if i % 7 == 0:
            pending.append(
                {"decision_id": d["decision_id"], "kind": "conversion", "reward_id": f"v{i}"}
            )
        if len(pending) >= 10:  # the policy learns, so the propensities change
            r = api.post("/v1/experiments/exp/rewards/batch", {"rewards": pending}, scope="write")
            assert r.status_code == 200, r.text
            pending = []
    extra = [{"decision_id": "unknown", "kind": "click", "reward_id": "orphan"}]
    r = api.post("/v1/experiments/exp/rewards/batch", {"rewards": pending + extra}, scope="write")
    assert r.status_code == 200, r.text
    return decisions


def test_round_trip_ips_of_the_logging_policy_is_the_observed_mean(
    api, session_factory, tmp_path: Path
) -> None:
    decisions = post_log(api)
    with session_factory() as session:
        table = export_log(session, "exp")
    assert table.num_rows == len(decisions)
    meta = json.loads(table.schema.metadata[b"bandit_fusion"])
    assert meta["format"] == 1 and meta["arms"] == ["a", "b", "c"]
    assert table.column("decision_id").to_pylist() == [d["decision_id"] for d in decisions]
    assert table.column("served_items").to_pylist()[0] == json.dumps(["item0", "x"])
    # rewards: click value 1 and conversion value 4, normalised by 4; the orphan is not
    # counted
    raw = np.asarray(table.column("reward_raw").to_numpy())
    assert set(np.unique(raw)) <= {0.0, 1.0, 4.0, 5.0}
    assert np.allclose(table.column("reward").to_numpy(), raw / 4)
    assert table.column("n_rewards").to_pylist()[0] >= 1  # decision 0 converted (i % 7 == 0)
    probs = np.stack([table.column(f"prob_{j}").to_numpy() for j in range(3)], axis=1)
    assert len({tuple(p) for p in probs}) > 1  # the policy learned between decisions

    path = write_export(table, tmp_path / "log.parquet")
    loaded = load_service_log(path)
    log = loaded.feedback
    assert loaded.arms == ("a", "b", "c") and log.n_rounds == len(decisions)
    assert log.logging_distribution is not None
    data = rows_input(log, log.logging_distribution[:, :, 0])
    observed = float(np.asarray(table.column("reward").to_numpy()).mean())
    assert IPS().estimate(data).value == pytest.approx(observed, abs=1e-12)
    assert SNIPS().estimate(data).value == pytest.approx(observed, abs=1e-12)

    result = evaluate_offline(
        log, [Candidate("uniform", np.full(3, 1 / 3))], ("replay", "ips", "dr"), n_bootstrap=50
    )
    assert [r.estimator for r in result.rows] == ["ips", "dr"]
    assert result.notes and "replay" in result.notes[0]


def test_export_from_url_and_unknown_experiment(api, db, session_factory) -> None:
    post_log(api, n=12)
    table = export_log_from_url(db.url, "exp") if db.is_sqlite else None
    if table is not None:
        assert table.num_rows == 12
    with session_factory() as session, pytest.raises(NotFound):
        export_log(session, "nope")


def test_export_and_replay_commands(api, db, tmp_path: Path) -> None:
    if not db.is_sqlite:
        pytest.skip("the command round trip runs on SQLite")
    from typer.testing import CliRunner

    from cli.main import app

    post_log(api, n=30)
    runner = CliRunner()
    out = tmp_path / "log.parquet"
    result = runner.invoke(
        app, ["export", "--experiment", "exp", "--database-url", db.url, "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "30 decisions" in result.output
    result = runner.invoke(
        app,
        [
            "replay",
            "--database-url",
            db.url,
            "--experiment",
            "exp",
            "--policies",
            "uniform,thompson",
            "--estimators",
            "ips,snips",
            "--bootstrap",
            "50",
            "--out",
            str(tmp_path / "r"),
            "--no-plots",
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "thompson" in result.output
    result = runner.invoke(app, ["export", "--experiment", "nope", "--database-url", db.url])
    assert result.exit_code == 2 and "nope" in result.output
