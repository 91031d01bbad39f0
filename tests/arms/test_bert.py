"""The BERT content arm: offline MiniLM, checksum, item-to-item ranking, one title per list."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from arms.bert import BertArm
from arms.data import Interactions, ItemCatalog
from arms.errors import ChecksumError
from arms.minilm import MODEL_SHA256, MiniLMEncoder, model_dir, verify_weights

TEXTS = [
    "Star Wars: Galaxy Battle (1977). Genres: Sci-Fi, Action",  # 0  history
    "Alien Planet Invasion (1986). Genres: Sci-Fi, Horror",  # 1  history
    "Galaxy Star Fleet (1995). Genres: Sci-Fi, Action",  # 2  related
    "Star Planet Robots (1999). Genres: Sci-Fi, Adventure",  # 3  related
    "Sense and Sensibility (1995). Genres: Romance, Drama",  # 4  unrelated
    "When Harry Met Sally (1989). Genres: Romance, Comedy",  # 5  unrelated
    "Wedding in Paris (1992). Genres: Romance",  # 6  unrelated
    "Little Women (1994). Genres: Drama",  # 7  unrelated
]


@pytest.fixture(scope="module")
def catalog() -> ItemCatalog:
    return ItemCatalog(np.arange(len(TEXTS)), tuple(TEXTS))


def test_weights_match_the_pinned_checksum() -> None:
    verify_weights(model_dir(), MODEL_SHA256)
    with pytest.raises(ChecksumError, match="SHA-256"):
        verify_weights(model_dir(), "0" * 64)


def test_bert_ranks_shared_genre_and_title_words_first(
    catalog: ItemCatalog, embedding_cache: str
) -> None:
    inter = Interactions([1, 1, 2, 2], [0, 1, 4, 5], [10, 20, 10, 20])
    arm = BertArm(cache_dir=embedding_cache, device="cpu").fit(inter, catalog)
    ids, _ = arm.top_k([1], k=2)
    assert set(ids[0].tolist()) == {2, 3}
    scores = arm.score([1], [2, 3, 4, 5, 6, 7])[0]
    assert scores[:2].min() > scores[2:].max()
    romance_first = arm.top_k([2], k=2)[0][0].tolist()
    assert romance_first[0] in {6, 7}


def test_two_tastes_each_get_their_neighbours(catalog: ItemCatalog, embedding_cache: str) -> None:
    # One sci-fi and one romance film: the item-to-item top-2 holds a neighbour of each.
    inter = Interactions([1, 1], [0, 4], [0, 100])
    arm = BertArm(cache_dir=embedding_cache, device="cpu").fit(inter, catalog)
    top = arm.top_k([1], k=2)[0][0].tolist()
    assert {2, 3} & set(top) and {5, 6, 7} & set(top)


def test_history_keeps_the_most_recent_distinct_items(
    catalog: ItemCatalog, embedding_cache: str
) -> None:
    inter = Interactions([1, 1, 1, 1], [4, 0, 1, 0], [10, 20, 30, 40])  # romance long ago
    arm = BertArm(cache_dir=embedding_cache, history=2, device="cpu").fit(inter, catalog)
    rows = arm.history_[0].tolist()
    assert [int(arm.item_ids_[r]) for r in rows] == [0, 1]  # newest first, 0 once
    romance = arm.score([1], [5, 6])[0]
    scifi = arm.score([1], [2, 3])[0]
    assert scifi.min() > romance.max()


def test_the_same_title_is_never_listed_twice(embedding_cache: str) -> None:
    # ml-100k lists some films twice under two ids (e.g. "Hugo Pool (1997)"); here every
    # film has a twin, so without deduplication every list would hold pairs.
    films = [
        "Hugo Pool (1997). Genres: Romance",
        "Sliding Doors (1998). Genres: Drama, Romance",
        "Nightwatch (1997). Genres: Horror, Thriller",
        "Butcher Boy, The (1998). Genres: Drama",
        "Chairman of the Board (1998). Genres: Comedy",
        "That Darn Cat! (1997). Genres: Children's, Comedy, Mystery",
    ]
    texts = [*films, *films]  # ids 0..5 and their twins 6..11
    cat = ItemCatalog(np.arange(12), tuple(texts))
    inter = Interactions([1, 1, 2, 3], [0, 2, 1, 4], [1, 2, 1, 1])
    arm = BertArm(cache_dir=embedding_cache, device="cpu").fit(inter, cat)
    ids, vals = arm.top_k([1, 2, 3, 99], k=4)
    for row in ids.tolist():
        titles = [texts[i] for i in row if i >= 0]
        assert len(titles) == len(set(titles)) == 4, row
    # a seen film's twin counts as seen: user 1 saw 0 and 2, so 6 and 8 are never listed
    assert not {0, 2, 6, 8} & set(ids[0].tolist())
    assert torch.isfinite(vals).all()
    # only 4 distinct unseen titles are left for user 1: k=5 leaves one empty slot
    ids5, vals5 = arm.top_k([1], k=5)
    assert ids5[0, -1] == -1 and torch.isneginf(vals5[0, -1])


def test_cold_start_users_get_popularity(catalog: ItemCatalog, embedding_cache: str) -> None:
    inter = Interactions([1, 2, 3, 3], [0, 5, 5, 1], [1, 1, 1, 2])
    arm = BertArm(cache_dir=embedding_cache, device="cpu").fit(inter, catalog)
    assert arm.top_k([99], k=1)[0].tolist() == [[5]]


def test_embeddings_are_cached_on_disk(catalog: ItemCatalog, tmp_path: Path) -> None:
    arm = BertArm(cache_dir=str(tmp_path), device="cpu", precision="fp32")
    first = arm.embed_items(list(TEXTS))
    files = list(tmp_path.glob("minilm-*.safetensors"))
    assert len(files) == 1
    assert torch.equal(arm.embed_items(list(TEXTS)), first)


def test_bert_requires_item_text() -> None:
    with pytest.raises(ValueError, match="items"):
        BertArm(device="cpu").fit(Interactions([0], [1]))


@pytest.mark.slow
def test_bf16_embeddings_match_fp32() -> None:
    texts = [*list(TEXTS), "a much longer description " * 20]
    fp32 = MiniLMEncoder(device="cpu", precision="fp32").embed(texts, batch_size=3)
    bf16 = MiniLMEncoder(device="cpu", precision="bf16").embed(texts, batch_size=3)
    assert fp32.shape == (len(texts), 384)
    torch.testing.assert_close(fp32.norm(dim=1), torch.ones(len(texts)))
    assert (fp32 * bf16).sum(1).min() >= 0.99


def test_embedding_matches_sentence_transformers_pooling() -> None:
    """Batched, bucketed embeddings equal one-at-a-time embeddings (padding changes nothing)."""
    encoder = MiniLMEncoder(device="cpu", precision="fp32")
    batched = encoder.embed(list(TEXTS), batch_size=8)
    single = torch.cat([encoder.embed([t]) for t in TEXTS])
    torch.testing.assert_close(batched, single, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="texts"):
        encoder.embed("one string")  # type: ignore[arg-type]


def test_similarity_table_and_embedding_products_agree(
    catalog: ItemCatalog, embedding_cache: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    inter = Interactions([1, 1, 2, 2, 2], [0, 1, 4, 5, 7], [10, 20, 10, 20, 30])
    arm = BertArm(cache_dir=embedding_cache, top_m=2, device="cpu").fit(inter, catalog)
    with_table = arm.score([1, 2, 9], np.arange(8))
    monkeypatch.setattr("arms.bert.ITEM_TABLE_LIMIT", 0)
    arm._item_sims = None
    torch.testing.assert_close(arm.score([1, 2, 9], np.arange(8)), with_table)
