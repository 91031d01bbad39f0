"""Summaries, row files and plots: the experiment end to end on a tiny grid."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from simulations.envs import Delayed, Stationary, linear_means, reversal
from simulations.experiment import run_experiment
from simulations.report import RowWriter, mean_interval, summarize
from simulations.runner import PolicySpec, run_grid

MEANS = linear_means(3, 0.2, 0.6)


def test_mean_interval_is_the_student_t_interval() -> None:
    values = [3.0, 5.0, 4.0, 8.0]
    mean, low, high = mean_interval(values)
    expected = stats.t.interval(0.95, df=3, loc=np.mean(values), scale=stats.sem(values))
    assert mean == 5.0 and (low, high) == pytest.approx(expected)
    assert mean_interval([2.0]) == (2.0, 2.0, 2.0)
    assert mean_interval([2.0, 2.0]) == (2.0, 2.0, 2.0)


def test_summarize_groups_by_environment_and_policy(factory) -> None:
    envs = [Stationary(MEANS, 100), reversal(MEANS, 100)]
    specs = [PolicySpec("beta-thompson", factory=factory), PolicySpec("recorder", factory=factory)]
    summary = summarize(run_grid(envs, specs, range(3), jobs=1, progress=False))
    assert [(s["env"], s["policy"]) for s in summary] == [
        ("bernoulli-stationary", "beta-thompson"),
        ("bernoulli-stationary", "recorder"),
        ("bernoulli-reversal", "beta-thompson"),
        ("bernoulli-reversal", "recorder"),
    ]
    for row in summary:
        assert row["n_seeds"] == 3 and row["horizon"] == 100
        assert row["regret_ci_low"] <= row["regret_mean"] <= row["regret_ci_high"]
        assert row["wall_time_s"] > 0 and row["rounds_per_s"] > 0


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_experiment_writes_rows_summary_and_plots(tmp_path, factory, fmt: str) -> None:
    envs = [reversal(MEANS, 400), Delayed(Stationary(MEANS, 400), 20)]
    specs = [
        PolicySpec("beta-thompson", {"prior": 2.0}, factory=factory),
        PolicySpec("recorder", factory=factory),
    ]
    out = run_experiment(
        envs, specs, range(3), tmp_path / "run", jobs=1, record_every=50, fmt=fmt, progress=False
    )  # type: ignore[arg-type]
    rows = pd.read_csv(out.rows_path) if fmt == "csv" else pd.read_parquet(out.rows_path)
    assert list(rows.columns) == ["env", "policy", "seed", "step", "arm", "reward", "regret"]
    assert len(rows) == out.rows_written == 2 * 2 * 3 * 8
    assert sorted(rows["step"].unique()) == list(range(50, 401, 50))
    last = rows[rows["step"] == 400]
    finals = {(s["env"], s["policy"]): s["regret_mean"] for s in out.summary}
    for (env, policy), group in last.groupby(["env", "policy"]):
        assert group["regret"].mean() == pytest.approx(finals[(env, policy)])

    saved = json.loads(out.summary_path.read_text())
    assert saved["config"]["seeds"] == [0, 1, 2] and saved["config"]["record_every"] == 50
    assert [e["name"] for e in saved["config"]["envs"]] == [
        "bernoulli-reversal",
        "bernoulli-stationary-delay20",
    ]
    assert len(saved["results"]) == 4
    thompson = saved["results"][0]
    assert thompson["params"] == {"prior": 2.0}
    assert thompson["regret_ci_low"] < thompson["regret_mean"] < thompson["regret_ci_high"]
    assert thompson["wall_time_s"] > 0

    assert out.png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = out.html_path.read_text()
    assert "plotly" in html and "beta-thompson" in html and "bernoulli-reversal" in html


def test_experiment_without_plots(tmp_path, factory) -> None:
    out = run_experiment(
        [Stationary(MEANS, 50)],
        [PolicySpec("recorder", factory=factory)],
        [0],
        tmp_path,
        jobs=1,
        progress=False,
        plots=False,
        fmt="csv",
    )
    assert out.summary_path.exists() and not out.png_path.exists()


def test_row_writer_rejects_unknown_formats_and_writes_empty_csv(tmp_path) -> None:
    with pytest.raises(ValueError, match="format must be 'csv' or 'parquet'"):
        RowWriter(tmp_path / "rows.json", "json")  # type: ignore[arg-type]
    with RowWriter(tmp_path / "rows.csv", "csv"):
        pass
    assert (tmp_path / "rows.csv").read_text().startswith("env,policy,seed,step")
