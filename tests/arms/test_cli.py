"""The ``arms`` CLI group, driven through Typer's runner on ``cli.arms.app``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

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
    metrics = json.loads(report.read_text())
    assert list(metrics) == ["mf", "bert", "popularity", "item-knn", "random"]
    for values in metrics.values():
        assert set(values) == {"recall@10", "ndcg@10", "coverage", "diversity"}
        assert all(0.0 <= v <= 1.0 for v in values.values())
    assert "ndcg@10" in result.output


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


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--split", "weekly"),
        ("--test-fraction", "0"),
        ("--test-fraction", "1"),
        ("--test-fraction", "1.5"),
        ("--test-fraction", "-0.2"),
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
    for name in ("mf", "bert", "popularity", "item-knn", "random"):
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
    m = json.loads(report.read_text())
    assert m["mf"]["ndcg@10"] > m["popularity"]["ndcg@10"] > m["random"]["ndcg@10"]
    assert m["item-knn"]["ndcg@10"] > m["popularity"]["ndcg@10"]
    assert m["bert"]["ndcg@10"] > m["random"]["ndcg@10"]
    assert m["random"]["coverage"] > 0.9
