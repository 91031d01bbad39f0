"""``bandit-fusion replay`` and ``export`` from the shell."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from cli.main import app

runner = CliRunner()


def obd_folder(root: Path, n: int = 600) -> Path:
    rng = np.random.default_rng(1)
    folder = root / "random" / "all"
    folder.mkdir(parents=True)
    items = rng.integers(0, 5, n)
    pd.DataFrame(
        {
            "timestamp": np.arange(n),
            "item_id": items,
            "position": rng.integers(1, 3, n),
            "click": (rng.random(n) < 0.05 + 0.1 * items).astype(int),
            "propensity_score": np.full(n, 0.2),
            "user_feature_0": rng.choice(["a", "b", "c"], n),
        }
    ).to_csv(folder / "all.csv")
    return folder


def test_replay_on_an_obd_folder_writes_table_summary_and_charts(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        [
            "replay",
            str(obd_folder(tmp_path)),
            "--policies",
            "uniform,thompson,epsilon-greedy",
            "--params",
            "epsilon-greedy:epsilon=0.2",
            "--estimators",
            "replay,ips,snips,dr",
            "--bootstrap",
            "100",
            "--batch",
            "50",
            "--out",
            str(out),
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "thompson" in result.output and "snips" in result.output
    summary = json.loads((out / "summary.json").read_text())
    rows = summary["estimates"]
    assert len(rows) == 3 * 4
    uniform_ips = next(r for r in rows if r["policy"] == "uniform" and r["estimator"] == "ips")
    assert uniform_ips["value"] == summary["logged_mean_reward"]  # uniform = logging policy
    assert (out / "estimates.png").stat().st_size > 0
    assert (out / "estimates.html").stat().st_size > 0


def test_replay_bad_input_is_one_line_with_exit_code_2(tmp_path: Path) -> None:
    folder = obd_folder(tmp_path)
    for args in (
        [str(folder), "--policies", "nonsense"],
        [str(tmp_path / "missing")],
        [str(folder), "--estimators", "ips,magic"],
        [str(folder), "--params", "kl-ucb:alpha=1", "--policies", "uniform"],
        [],
    ):
        result = runner.invoke(app, ["replay", *args, "--out", str(tmp_path / "o")])
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.output
