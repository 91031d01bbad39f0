"""Loaders for both layouts and the temporal split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from arms.data import (
    Interactions,
    ItemCatalog,
    load_dataset,
    load_interactions,
    load_items,
    load_movielens_100k,
    temporal_split,
)


def write_generic(folder: Path, suffix: str) -> None:
    inter = pd.DataFrame(
        {
            "user": [1, 1, 2, 3],
            "item": [10, 11, 10, 12],
            "timestamp": [5, 6, 7, 8],
            "value": [1.0, 2.0, 1.0, 4.0],
        }
    )
    items = pd.DataFrame(
        {"item": [10, 11], "text": ["Alpha", "Beta"], "genres": ["Drama|Comedy", None]}
    )
    for name, frame in (("interactions", inter), ("items", items)):
        if suffix == ".csv":
            frame.to_csv(folder / f"{name}.csv", index=False)
        else:
            frame.to_parquet(folder / f"{name}.parquet")


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_generic_tables_load(tmp_path: Path, suffix: str) -> None:
    write_generic(tmp_path, suffix)
    data = load_dataset(tmp_path)
    assert data.interactions.users.tolist() == [1, 1, 2, 3]
    assert data.interactions.values.dtype == np.float32
    # item 12 occurs only in the interactions: added with empty text
    assert data.items.item_ids.tolist() == [10, 11, 12]
    assert data.items.texts == ("Alpha", "Beta", "")
    assert data.items.genre_names == ("Comedy", "Drama")
    assert data.items.genres.tolist() == [[True, True], [False, False], [False, False]]
    assert len(load_interactions(tmp_path / f"interactions{suffix}")) == 4
    assert len(load_items(tmp_path / f"items{suffix}")) == 2


def test_loaders_name_what_is_missing(tmp_path: Path) -> None:
    pd.DataFrame({"user": [1], "timestamp": [2]}).to_csv(tmp_path / "interactions.csv", index=False)
    with pytest.raises(ValueError, match="item"):
        load_interactions(tmp_path / "interactions.csv")
    with pytest.raises(FileNotFoundError):
        load_dataset(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="path"):
        load_interactions(tmp_path / "table.xlsx")


def test_interactions_validate_their_columns() -> None:
    with pytest.raises(ValueError, match="same length"):
        Interactions([1, 2], [1])
    with pytest.raises(ValueError, match="users"):
        Interactions(["a"], [1])
    with pytest.raises(ValueError, match="values"):
        Interactions([1], [1], [0], [float("nan")])
    with pytest.raises(ValueError, match="unique"):
        ItemCatalog(np.array([1, 1]), ("a", "b"))


def test_per_user_split_respects_time() -> None:
    rng = np.random.default_rng(0)
    n = 500
    inter = Interactions(rng.integers(0, 20, n), rng.integers(0, 50, n), rng.integers(0, 10_000, n))
    train, test = temporal_split(inter, 0.25)
    assert len(train) + len(test) == n
    for user in np.unique(inter.users):
        tr = train.timestamps[train.users == user]
        te = test.timestamps[test.users == user]
        total = len(tr) + len(te)
        assert len(tr) >= 1
        assert len(te) == min(int(np.ceil(0.25 * total)), total - 1)
        if len(te):
            assert tr.max() <= te.min()


def test_global_split_uses_one_cut_off() -> None:
    inter = Interactions(np.arange(10) % 3, np.arange(10), np.arange(10) * 100)
    train, test = temporal_split(inter, 0.3, by="global")
    assert train.timestamps.max() < test.timestamps.min()
    assert len(test) == 3
    with pytest.raises(ValueError, match="test_fraction"):
        temporal_split(inter, 1.0)
    with pytest.raises(ValueError, match="by"):
        temporal_split(inter, 0.2, by="item")  # type: ignore[arg-type]


@pytest.mark.data
def test_movielens_100k_loads(ml100k: Path) -> None:
    data = load_movielens_100k(ml100k)
    inter, items = data.interactions, data.items
    assert (len(inter), inter.n_users, inter.n_items, len(items)) == (100_000, 943, 1682, 1682)
    assert set(np.unique(inter.values).tolist()) == {1.0, 2.0, 3.0, 4.0, 5.0}
    assert items.texts[0] == "Toy Story (1995). Genres: Animation, Children's, Comedy"
    assert items.text_of(np.array([267])) == ["unknown"]
    assert items.genres.shape == (1682, 19)
    train, test = temporal_split(inter)
    assert (len(train), len(test)) == (79_619, 20_381)
