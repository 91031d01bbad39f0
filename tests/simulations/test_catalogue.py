"""The generated catalogue and the fusion world built from trained arms (the demo's data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from arms.data import load_dataset
from arms.registry import make_arm
from arms.splits import SplitSpec, make_split
from simulations.catalogue import CatalogueSpec, make_catalogue, write_dataset
from simulations.fusion_world import ranked_lists, world_from_arms
from simulations.movielens.clicks import ClickModel

SPEC = CatalogueSpec(n_users=80, n_items=200, n_categories=4, seed=3)


def test_same_seed_same_population_other_seed_other() -> None:
    a, b = make_catalogue(SPEC), make_catalogue(SPEC)
    other = make_catalogue(CatalogueSpec(n_users=80, n_items=200, n_categories=4, seed=4))
    assert a.dataset.items.texts == b.dataset.items.texts
    assert np.array_equal(a.attraction, b.attraction)
    assert np.array_equal(a.dataset.interactions.items, b.dataset.interactions.items)
    assert a.dataset.items.texts != other.dataset.items.texts


def test_titles_carry_their_category_and_are_distinct() -> None:
    cat = make_catalogue(SPEC)
    texts = cat.dataset.items.texts
    titles = [t.split(". Genres: ")[0] for t in texts]
    assert len(set(titles)) == len(titles) == SPEC.n_items
    for text, c in zip(texts, cat.category, strict=True):
        assert text.endswith(f"Genres: {cat.category_names[c]}")
    assert np.array_equal(cat.dataset.items.genres.argmax(axis=1), cat.category)


def test_histories_and_attraction_follow_the_tastes() -> None:
    cat = make_catalogue(SPEC)
    inter = cat.dataset.interactions
    counts = np.bincount(inter.users, minlength=SPEC.n_users + 1)[1:]
    assert counts.min() >= SPEC.min_history
    pairs = set(zip(inter.users.tolist(), inter.items.tolist(), strict=True))
    assert len(pairs) == len(inter)  # distinct items per user
    assert cat.attraction.shape == (SPEC.n_users, SPEC.n_items)
    assert cat.attraction.min() >= 0.0 and cat.attraction.max() <= SPEC.max_attraction
    # about top_share of the pairs are more than half as attractive as the maximum
    share = float((cat.attraction > SPEC.max_attraction / 2).mean())
    assert abs(share - SPEC.top_share) < 0.005
    # a user's history leans to the categories they find attractive: the items they took
    # are on average far more attractive to them than the catalogue
    rows, cols = inter.users - 1, inter.items - 1
    assert cat.attraction[rows, cols].mean() > 3 * cat.attraction.mean()


def test_written_dataset_reads_back(tmp_path: Path) -> None:
    cat = make_catalogue(SPEC)
    back = load_dataset(write_dataset(cat.dataset, tmp_path / "data"))
    assert back.items.texts == cat.dataset.items.texts
    names = [back.items.genre_names[j] for j in back.items.genres.argmax(axis=1)]
    assert back.items.genres.sum(axis=1).tolist() == [1] * SPEC.n_items
    assert names == [cat.category_names[c] for c in cat.category]  # names sorted on reading
    assert np.array_equal(back.interactions.users, cat.dataset.interactions.users)
    assert np.array_equal(back.interactions.timestamps, cat.dataset.interactions.timestamps)


def test_bad_spec_names_the_field() -> None:
    with pytest.raises(ValueError, match="n_categories"):
        CatalogueSpec(n_categories=9)
    with pytest.raises(ValueError, match="n_items"):
        CatalogueSpec(n_items=20)


def _fitted(name: str) -> tuple[object, object, object, np.ndarray]:
    cat = make_catalogue(SPEC)
    train, test = make_split(cat.dataset.interactions, SplitSpec())
    arm = make_arm(name, seed=0, device="cpu")
    arm.fit(train, cat.dataset.items)
    return arm, train, test, cat.attraction


@pytest.mark.parametrize("name", ["popularity", "item-knn"])
def test_ranked_lists_order_as_the_service_ranks(name: str) -> None:
    """Decreasing score, ties by item id, training items left out (service.recommenders.rank)."""
    arm, _, _, _ = _fitted(name)
    items = np.arange(1, SPEC.n_items + 1)
    users = np.arange(1, SPEC.n_users + 1)
    lists, scores = ranked_lists(arm, users, items, depth=30, block=7)
    for u in (0, 13, 79):
        s = arm.score([int(users[u])], items).float().numpy()[0]  # type: ignore[attr-defined]
        keep = ~np.isin(items, arm.seen_items(int(users[u])))  # type: ignore[attr-defined]
        pool, s = items[keep], s[keep]
        expected = pool[np.lexsort((pool, -s))][:30]
        assert np.array_equal(items[lists[u]], expected)
        assert np.all(np.diff(scores[u]) <= 0)


def test_world_uses_the_given_attraction_except_on_history() -> None:
    pop, train, test, attraction = _fitted("popularity")
    knn, _, _, _ = _fitted("item-knn")
    items = np.arange(1, SPEC.n_items + 1)
    genres = make_catalogue(SPEC).dataset.items.genres
    world = world_from_arms(
        {"popularity": pop, "item-knn": knn},
        train,  # type: ignore[arg-type]
        test,  # type: ignore[arg-type]
        items,
        genres=genres,
        n_candidates=20,
        attraction=attraction,
    )
    assert world.arm_names == ("popularity", "item-knn") and world.lists.shape == (2, 80, 20)
    table = ClickModel().attraction_table(world)
    seen = np.zeros_like(table, dtype=bool)
    seen[world.history_users, world.history_items] = True
    assert np.all(table[seen] == 0.0)
    assert np.array_equal(table[~seen], attraction[~seen])
    # no list shows a training item
    for a in range(2):
        listed = np.zeros_like(seen)
        rows = np.repeat(np.arange(80), 20)
        listed[rows, world.lists[a].ravel()] = True
        assert not np.any(listed & seen)
    with pytest.raises(ValueError, match="attraction"):
        world_from_arms(
            {"popularity": pop, "item-knn": knn},
            train,  # type: ignore[arg-type]
            test,  # type: ignore[arg-type]
            items,
            genres=genres,
            attraction=attraction[:10],
        )


@pytest.mark.slow
def test_content_arm_sees_the_categories_in_the_titles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MiniLM on the generated titles: bert's lists stay in the user's favourite category."""
    monkeypatch.setenv("BANDIT_FUSION_CACHE", str(tmp_path))
    cat = make_catalogue(SPEC)
    train, _ = make_split(cat.dataset.interactions, SplitSpec())
    users = np.arange(1, SPEC.n_users + 1)
    favourite = np.array(
        [np.bincount(cat.category[train.items[train.users == u] - 1]).argmax() for u in users]
    )
    share = {}
    for name in ("bert", "popularity"):
        arm = make_arm(name, seed=0, device="cpu")
        arm.fit(train, cat.dataset.items)
        ids, _ = arm.top_k(users, 10)
        share[name] = float((cat.category[ids.numpy() - 1] == favourite[:, None]).mean())
    # popularity is blind to the user's categories; the content arm reads them in the titles
    assert share["bert"] > 0.45 and share["bert"] > 1.5 * share["popularity"], share
