"""The BERT content arm: offline MiniLM loading, checksum, and content-based ranking."""

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
    assert set(romance_first) <= {6, 7}


def test_recency_weights_favour_the_latest_history(
    catalog: ItemCatalog, embedding_cache: str
) -> None:
    day = 86_400
    inter = Interactions([1, 1], [0, 4], [0, 100 * day])  # sci-fi long ago, romance lately
    recent = BertArm(cache_dir=embedding_cache, half_life_days=5.0, device="cpu").fit(
        inter, catalog
    )
    flat = BertArm(cache_dir=embedding_cache, half_life_days=None, device="cpu").fit(inter, catalog)
    romance_minus_scifi = [
        float(a.score([1], [5])[0, 0] - a.score([1], [2])[0, 0]) for a in (recent, flat)
    ]
    assert romance_minus_scifi[0] > romance_minus_scifi[1]


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
