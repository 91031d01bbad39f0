"""``arms.tune``: grid parsing and the search on the nested validation split."""

from __future__ import annotations

import pytest

from arms.data import Interactions, ItemCatalog
from arms.registry import make_arm
from arms.splits import nested_split
from arms.tune import expand_grid, parse_grid, tune, validation_ndcg


def test_parse_and_expand_grid() -> None:
    grid = parse_grid(["factors=8,16", "half_life_days=null,30", "name=abc"])
    assert grid == {"factors": [8, 16], "half_life_days": [None, 30], "name": ["abc"]}
    assert len(expand_grid(grid)) == 4
    with pytest.raises(ValueError, match="grid"):
        parse_grid(["factors"])


def test_tune_picks_the_best_validation_score(
    interactions: Interactions, catalog: ItemCatalog
) -> None:
    grid = {"neighbours": [1, 5, 30]}
    result = tune("item-knn", interactions, catalog, grid, k=5, fixed={"device": "cpu"})
    assert [t.params for t in result.trials] == expand_grid(grid)
    assert result.best.ndcg == max(t.ndcg for t in result.trials)
    inner, valid = nested_split(interactions)
    again, users = validation_ndcg(
        lambda: make_arm("item-knn", neighbours=result.best.params["neighbours"], device="cpu"),
        inner,
        valid,
        catalog,
        k=5,
    )
    assert again == pytest.approx(result.best.ndcg, abs=1e-6) and users == result.validation_users
    # the synthetic users prefer one genre: any co-occurrence model beats random lists
    rnd, _ = validation_ndcg(lambda: make_arm("random", device="cpu"), inner, valid, catalog, 5)
    assert result.best.ndcg > rnd


def test_unknown_parameters_are_refused(interactions: Interactions) -> None:
    with pytest.raises(ValueError, match="factorz"):
        tune("mf", interactions, None, {"factorz": [2]})
