"""``bandit-fusion simulate`` and ``bandit-fusion policies`` through typer's CliRunner."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from cli.main import app
from cli.simulate import parse_params

runner = CliRunner()
TINY = [
    "simulate",
    "--arms",
    "3",
    "--horizon",
    "300",
    "--seeds",
    "3",
    "--jobs",
    "1",
    "--no-progress",
]


def test_simulate_writes_outputs_and_prints_the_summary(tmp_path) -> None:
    out = tmp_path / "sim"
    result = runner.invoke(
        app,
        [
            *TINY,
            "--env",
            "bernoulli,bernoulli-reversal",
            "--policies",
            "ucb1,thompson",
            "--means",
            "0.1:0.5",
            "--record-every",
            "10",
            "--format",
            "csv",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "Final expected regret" in result.output and "thompson" in result.output
    rows = pd.read_csv(out / "rows.csv")
    assert len(rows) == 2 * 2 * 3 * 30
    summary = json.loads((out / "summary.json").read_text())
    assert {(r["env"], r["policy"]) for r in summary["results"]} == {
        (e, p) for e in ("bernoulli-stationary", "bernoulli-reversal") for p in ("ucb1", "thompson")
    }
    assert summary["config"]["envs"][0]["means"] == pytest.approx([0.1, 0.3, 0.5])
    assert (out / "regret.png").stat().st_size > 0 and (out / "regret.html").stat().st_size > 0


@pytest.mark.parametrize("env", ["gaussian", "drift", "delayed"])
def test_simulate_every_environment(tmp_path, env: str) -> None:
    policy = "gaussian-thompson" if env == "gaussian" else "thompson"
    result = runner.invoke(
        app,
        [
            *TINY,
            "--env",
            env,
            "--delay",
            "25",
            "--policies",
            policy,
            "--no-plots",
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    assert pd.read_parquet(tmp_path / "rows.parquet")["step"].max() == 300


def test_simulate_applies_parameter_overrides(tmp_path) -> None:
    result = runner.invoke(
        app,
        [
            *TINY,
            "--env",
            "bernoulli-reversal",
            "--policies",
            "discounted-thompson,ucb1",
            "--params",
            "discounted-thompson:gamma=0.99",
            "--no-plots",
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["results"][0]["params"]["gamma"] == 0.99  # the override
    assert summary["results"][1]["params"]  # ucb1's defaults, as the policy reports them


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--policies", "no-such-policy"], "unknown policies no-such-policy"),
        (["--policies", "ucb1", "--params", "thompson:prior=2"], "not run: thompson"),
        (["--policies", "ucb1", "--params", "ucb1"], "policy:key=value"),
        (["--env", "poisson"], "unknown environment 'poisson'"),
        (["--means", "0.1,0.2"], "means lists 2 values but arms is 3"),
        (["--format", "json"], "json"),
    ],
)
def test_simulate_rejects_bad_input_with_a_message(tmp_path, args: list[str], message: str):
    result = runner.invoke(app, [*TINY, *args, "--out", str(tmp_path)], env={"COLUMNS": "300"})
    assert result.exit_code == 2
    assert message in " ".join(result.output.replace("│", " ").split())


def test_policies_lists_every_registered_policy_with_defaults() -> None:
    from bandit import POLICIES

    result = runner.invoke(app, ["policies"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for name in POLICIES:
        assert name in result.output
    assert "gamma=" in result.output and "river-ucb" in result.output


def test_parse_params() -> None:
    assert parse_params(["a:x=1,y=0.5;b:flag=true,name=abc", "a:z=none"]) == {
        "a": {"x": 1, "y": 0.5, "z": None},
        "b": {"flag": True, "name": "abc"},
    }
    assert parse_params(None) == {}
    with pytest.raises(typer.BadParameter):
        parse_params(["a:x"])


def test_simulate_refuses_bounded_policies_on_gaussian_rewards(tmp_path) -> None:
    from typer.testing import CliRunner

    from cli.main import app

    result = CliRunner().invoke(
        app,
        [
            "simulate",
            "--env",
            "gaussian",
            "--policies",
            "thompson",
            "--horizon",
            "100",
            "--seeds",
            "1",
            "--out",
            str(tmp_path / "g"),
        ],
    )
    assert result.exit_code != 0
    assert "gaussian-thompson" in result.output


def test_simulate_refuses_repeated_policies_and_bad_params(tmp_path) -> None:
    from typer.testing import CliRunner

    from cli.main import app

    runner = CliRunner()
    repeated = runner.invoke(
        app, ["simulate", "--policies", "ucb1,ucb1", "--horizon", "100", "--out", str(tmp_path)]
    )
    assert repeated.exit_code != 0 and "twice" in repeated.output
    bad = runner.invoke(
        app,
        [
            "simulate",
            "--policies",
            "ucb1",
            "--params",
            "ucb1:c=2",
            "--horizon",
            "100",
            "--out",
            str(tmp_path),
        ],
    )
    assert bad.exit_code != 0 and "unknown parameter" in bad.output
