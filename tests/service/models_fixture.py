"""A models directory with the four arms the service serves in practice (mf, bert, popularity,
item-knn), trained on a small synthetic catalogue, for the batching and reload tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from arms.data import Interactions, ItemCatalog
from arms.registry import make_arm

N_USERS, N_ITEMS, FIRST_ITEM = 50, 90, 1000
KINDS = {
    "mf": ("mf", {"factors": 6}),
    "bert": ("bert", {"history": 5}),
    "pop": ("popularity", {}),
    "knn": ("item-knn", {"neighbours": 20}),
}
GENRES = ("Drama", "Comedy", "Horror", "Western", "Musical")


def write_models(out: Path, cache: Path, trained_at: str = "2026-12-01T10:00:00+00:00") -> Path:
    """Train the arms of :data:`KINDS` on synthetic tastes and save them under ``out``."""
    rng = np.random.default_rng(5)
    genre = rng.integers(len(GENRES), size=N_ITEMS)
    rows = []
    for u in range(N_USERS):
        likes = rng.dirichlet(np.ones(len(GENRES)) * 0.5)[genre] + 0.01
        picks = rng.choice(
            N_ITEMS, size=int(rng.integers(3, 15)), replace=False, p=likes / likes.sum()
        )
        for i in picks:
            rows.append((u, FIRST_ITEM + int(i), int(rng.integers(1_000_000)), 1.0))
    frame = pd.DataFrame(rows, columns=["user", "item", "timestamp", "value"])
    items = ItemCatalog(
        np.arange(FIRST_ITEM, FIRST_ITEM + N_ITEMS),
        tuple(f"Film {i} ({1950 + i}). Genres: {GENRES[g]}" for i, g in enumerate(genre)),
    )
    inter = Interactions.from_frame(frame)
    for folder, (name, params) in KINDS.items():
        extra = {"cache_dir": str(cache)} if name == "bert" else {}
        arm = make_arm(name, device="cpu", seed=0, **params, **extra)
        arm.fit(inter, items).save(out / folder)
    (out / "split.json").write_text(json.dumps({"trained_at": trained_at}))
    return out
