"""Fixtures for the arms tests: small synthetic data sets and the path to ml-100k."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from arms.data import Interactions, ItemCatalog

REPO = Path(__file__).resolve().parents[2]
ML100K = (REPO / ".." / "shared" / "data" / "ml-100k").resolve()

GENRES = ("Sci-Fi", "Romance", "Horror")
WORDS = {
    "Sci-Fi": ["Space", "Galaxy", "Robot", "Star", "Planet", "Alien"],
    "Romance": ["Love", "Heart", "Kiss", "Wedding", "Paris", "Sweet"],
    "Horror": ["Blood", "Ghost", "Night", "Zombie", "Scream", "Grave"],
}


def synthetic_catalog(n_items: int = 36) -> ItemCatalog:
    """Items 100..; item j belongs to genre j % 3 and its title uses that genre's words."""
    ids = np.arange(100, 100 + n_items)
    texts, flags = [], np.zeros((n_items, len(GENRES)), dtype=bool)
    for j in range(n_items):
        genre = GENRES[j % 3]
        words = WORDS[genre]
        texts.append(f"{words[j % 6]} {words[(j // 3) % 6]} {j}. Genres: {genre}")
        flags[j, j % 3] = True
    return ItemCatalog(ids, tuple(texts), flags, GENRES)


def synthetic_interactions(
    n_users: int = 24, n_items: int = 36, per_user: int = 8, seed: int = 0
) -> Interactions:
    """Users 0..n-1 each interact with ``per_user`` items, mostly of genre ``user % 3``."""
    rng = np.random.default_rng(seed)
    users, items, times = [], [], []
    for u in range(n_users):
        own = np.arange(u % 3, n_items, 3)
        chosen = rng.choice(own, size=min(per_user - 1, len(own)), replace=False)
        other = rng.integers(0, n_items)
        for t, j in enumerate([*chosen, other]):
            users.append(u)
            items.append(100 + int(j))
            times.append(1_000_000 + 3600 * (t + u))
    return Interactions(users, items, times, np.ones(len(users)))


@pytest.fixture(scope="session")
def catalog() -> ItemCatalog:
    return synthetic_catalog()


@pytest.fixture(scope="session")
def interactions() -> Interactions:
    return synthetic_interactions()


@pytest.fixture(scope="session")
def embedding_cache(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One embedding cache per test session, so MiniLM embeds each text set once."""
    return str(tmp_path_factory.mktemp("embeddings"))


@pytest.fixture(scope="session")
def ml100k() -> Path:
    if not (ML100K / "u.data").is_file():
        pytest.skip(f"MovieLens-100K not found at {ML100K}")
    return ML100K
