"""The ``arms`` CLI group, driven through Typer's runner on ``cli.arms.app``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from arms.data import temporal_split
from cli.arms import app
from tests.arms.conftest import synthetic_catalog, synthetic_interactions

runner = CliRunner()


@pytest.fixture()
def data_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    synthetic_interactions(n_users=30).to_frame().to_csv(folder / "interactions.csv", index=False)
    cat = synthetic_catalog()
    import pandas as pd

    genres = [
        "|".join(n for n, on in zip(cat.genre_names, row, strict=True) if on) for row in cat.genres
    ]
    pd.DataFrame({"item": cat.item_ids, "text": cat.texts, "genres": genres}).to_parquet(
        folder / "items.parquet"
    )
    return folder


def test_train_then_evaluate_writes_models_and_json(
    data_dir: Path, tmp_path: Path, embedding_cache: str
) -> None:
    out, report = tmp_path / "models", tmp_path / "report" / "metrics.json"
    result = runner.invoke(
        app,
        [
            "train",
            "--data",
            str(data_dir),
            "--out",
            str(out),
            "--device",
            "cpu",
            "--param",
            "mf.factors=8",
            "--param",
            "mf.iterations=4",
            "--param",
            f"bert.cache_dir={embedding_cache}",
        ],
    )
    assert result.exit_code == 0, result.output
    assert {p.name for p in out.iterdir()} == {
        "mf",
        "bert",
        "popularity",
        "item-knn",
        "random",
        "ease",
        "split.json",
    }
    result = runner.invoke(
        app,
        [
            "evaluate",
            "--data",
            str(data_dir),
            "--models",
            str(out),
            "--json",
            str(report),
            "--device",
            "cpu",
        ],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(report.read_text())
    arms = ["mf", "bert", "popularity", "item-knn", "random", "ease"]
    every = payload["groups"]["all"]
    assert list(every["arms"]) == arms and list(payload["lists"]) == arms
    for values in every["arms"].values():
        assert set(values) == {"precision@10", "recall@10", "ndcg@10"}
        for est in values.values():
            assert 0.0 <= est["low"] <= est["mean"] <= est["high"] <= 1.0
    best = every["best"]
    assert every["difference_to_best"][best]["ndcg@10"]["mean"] == 0.0
    assert {"all", "warm"} <= set(payload["groups"])
    assert "ndcg@10" in result.output and "test users: 30" in result.output


def test_bad_arguments_are_reported(data_dir: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["train", "--data", str(data_dir), "--out", str(tmp_path), "--arms", "mf,nope"]
    )
    assert result.exit_code != 0 and "nope" in result.output
    result = runner.invoke(
        app, ["train", "--data", str(data_dir), "--out", str(tmp_path), "--param", "factors"]
    )
    assert result.exit_code != 0 and "param" in result.output
    result = runner.invoke(app, ["evaluate", "--data", str(data_dir), "--models", str(tmp_path)])
    assert result.exit_code != 0


def test_evaluate_refuses_data_that_gives_another_split(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "models"
    train = ["train", "--data", str(data_dir), "--out", str(out), "--arms", "popularity"]
    assert runner.invoke(app, train).exit_code == 0
    other = tmp_path / "other"
    other.mkdir()
    frame = synthetic_interactions(n_users=30, seed=1).to_frame()
    frame.to_csv(other / "interactions.csv", index=False)
    (other / "items.parquet").write_bytes((data_dir / "items.parquet").read_bytes())
    result = runner.invoke(app, ["evaluate", "--data", str(other), "--models", str(out)])
    assert result.exit_code == 2, result.output
    assert "different split" in result.output and "--data" in result.output
    result = runner.invoke(app, ["evaluate", "--data", str(data_dir), "--models", str(out)])
    assert result.exit_code == 0, result.output


def test_tune_writes_the_best_parameters_that_train_then_uses(
    data_dir: Path, tmp_path: Path
) -> None:
    models = tmp_path / "models"
    result = runner.invoke(
        app,
        [
            "tune",
            "--data",
            str(data_dir),
            "--arm",
            "item-knn",
            "--grid",
            "neighbours=1,10",
            "--models",
            str(models),
            "--device",
            "cpu",
        ],
    )
    assert result.exit_code == 0, result.output
    params = json.loads((models / "params.json").read_text())
    tuning = json.loads((models / "tuning" / "item-knn.json").read_text())
    assert params["item-knn"] == tuning["best"]["params"]
    assert [t["params"]["neighbours"] for t in tuning["trials"]] == [1, 10]
    train = ["train", "--data", str(data_dir), "--out", str(models), "--arms", "item-knn"]
    assert runner.invoke(app, train).exit_code == 0
    saved = json.loads((models / "item-knn" / "arm.json").read_text())
    assert saved["params"]["neighbours"] == params["item-knn"]["neighbours"]
    bad = runner.invoke(
        app,
        [
            "tune",
            "--data",
            str(data_dir),
            "--arm",
            "mf",
            "--grid",
            "nope=1",
            "--models",
            str(models),
        ],
    )
    assert bad.exit_code == 2 and "nope" in bad.output


def test_global_split_reports_new_and_cold_users(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "models"
    train = ["train", "--data", str(data_dir), "--out", str(out), "--arms", "popularity"]
    assert runner.invoke(app, [*train, "--split", "global"]).exit_code == 0
    result = runner.invoke(app, ["evaluate", "--data", str(data_dir), "--models", str(out)])
    assert result.exit_code == 0, result.output
    train_set, test_set = temporal_split(synthetic_interactions(n_users=30), 0.2, by="global")
    new = len(np.setdiff1d(test_set.users, train_set.users))
    assert new > 0 and f"{new} new (no training interaction)" in result.output


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--split", "weekly"),
        ("--test-fraction", "0"),
        ("--test-fraction", "1"),
        ("--test-fraction", "1.5"),
        ("--test-fraction", "-0.2"),
        ("--cold-users", "1"),
        ("--cold-history", "0"),
    ],
)
def test_bad_split_options_are_usage_errors(
    data_dir: Path, tmp_path: Path, option: str, value: str
) -> None:
    out = tmp_path / "models"
    result = runner.invoke(
        app,
        ["train", "--data", str(data_dir), "--out", str(out), "--arms", "random", option, value],
    )
    assert result.exit_code == 2, result.output  # click's usage error, not a traceback
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert f"Invalid value for '{option}'" in result.output
    assert not out.exists()


def test_list_names_every_arm() -> None:
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0
    for name in ("mf", "bert", "popularity", "item-knn", "random", "ease"):
        assert name in result.output


@pytest.mark.slow
@pytest.mark.data
def test_cli_on_movielens_100k(ml100k: Path, tmp_path: Path, embedding_cache: str) -> None:
    out, report = tmp_path / "models", tmp_path / "metrics.json"
    result = runner.invoke(
        app,
        [
            "train",
            "--data",
            str(ml100k),
            "--out",
            str(out),
            "--device",
            "cpu",
            "--param",
            f"bert.cache_dir={embedding_cache}",
        ],
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        app, ["evaluate", "--data", str(ml100k), "--models", str(out), "--json", str(report)]
    )
    assert result.exit_code == 0, result.output
    every = json.loads(report.read_text())["groups"]["all"]["arms"]
    m = {arm: values["ndcg@10"]["mean"] for arm, values in every.items()}
    assert m["ease"] > m["popularity"] and m["mf"] > m["popularity"] > m["random"]
    assert m["item-knn"] > m["popularity"]
    assert m["bert"] > 1.5 * m["random"]
