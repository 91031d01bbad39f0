"""A synthetic catalogue and user population, generated from a seed, for the fusion demo.

Nothing is read from disk, so ``bandit-fusion demo`` runs on a fresh machine. The model:

* **Items** belong to one of ``n_categories`` categories (space, cooking, crime, ...). Each
  gets a title made of its category's words and a year ("The Midnight Nebula (1987)"), and
  the text ``"<title>. Genres: <Category>"``, the layout of :mod:`arms.data`'s MovieLens
  loader, so the content arm's MiniLM embeddings carry the category. Each item also has a
  quality ``q_i ~ N(0, 1)`` and a latent vector ``z_i ~ N(0, I_r / r)`` that no text shows.
* **Users** have tastes over categories ``theta_u ~ Dirichlet(concentration)`` (most users
  like one or two categories) and a latent vector ``w_u ~ N(0, I_r)``.
* **Utility** ``eta_ui = category_weight * log(theta_u[c_i] + 0.01) + latent_weight *
  <w_u, z_i> + quality_weight * q_i``.
* **History**: each user interacted with ``n_u = min_history + Poisson(mean_extra_history)``
  distinct items drawn without replacement with probability proportional to
  ``exp(eta_ui)`` (Gumbel top-n), one per day in that order; this is what the arms train on.
* **Attraction** (the probability that a user who examines the item clicks it) is
  ``max_attraction * sigmoid(sharpness * (eta_ui - tau))``, ``tau`` the ``1 - top_share``
  quantile of all utilities, so about ``top_share`` of the (user, item) pairs are attractive.

So every arm sees part of the truth: popularity sees quality, the content arm (``bert``)
sees categories, MF and item-kNN learn tastes and latent vectors from co-occurrence.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from arms.data import Dataset, Interactions, ItemCatalog

__all__ = ["CATEGORIES", "Catalogue", "CatalogueSpec", "make_catalogue", "write_dataset"]

CATEGORIES: dict[str, tuple[str, ...]] = {
    "Space": (
        "Galaxy", "Orbit", "Nebula", "Starship", "Comet", "Asteroid", "Planet", "Rocket",
        "Cosmos", "Eclipse", "Satellite", "Astronaut",
    ),
    "Cooking": (
        "Kitchen", "Recipe", "Bakery", "Spice", "Feast", "Soup", "Pastry", "Harvest",
        "Garlic", "Oven", "Noodle", "Chef",
    ),
    "Crime": (
        "Detective", "Murder", "Alibi", "Heist", "Witness", "Verdict", "Gangster", "Suspect",
        "Ransom", "Clue", "Smuggler", "Informant",
    ),
    "Romance": (
        "Love", "Kiss", "Wedding", "Heart", "Valentine", "Sweetheart", "Honeymoon", "Darling",
        "Bride", "Letters", "Promise", "Embrace",
    ),
    "Sports": (
        "Football", "Marathon", "Stadium", "Champion", "Goal", "Coach", "Tournament", "Racer",
        "Boxing", "Trophy", "League", "Sprint",
    ),
    "Music": (
        "Jazz", "Symphony", "Guitar", "Melody", "Piano", "Concert", "Rhythm", "Ballad",
        "Drummer", "Opera", "Chorus", "Tempo",
    ),
    "Nature": (
        "Forest", "Wolf", "Ocean", "River", "Mountain", "Eagle", "Jungle", "Glacier",
        "Meadow", "Coral", "Safari", "Wilderness",
    ),
    "History": (
        "Empire", "Pharaoh", "Knight", "Castle", "Dynasty", "Revolution", "Emperor", "Crusade",
        "Legion", "Monarch", "Kingdom", "Chronicle",
    ),
}  # fmt: skip
"""Category names and the words their titles are made of."""

_ADJECTIVES = (
    "Silent", "Last", "Golden", "Midnight", "Lost", "Wild", "Secret", "Broken", "Little",
    "Great", "Dark", "Final", "Hidden", "Burning", "Crimson", "Endless",
)  # fmt: skip
_DAY_S = 86_400
_START_S = 1_600_000_000  # timestamps: one interaction per day from here


@dataclass(frozen=True, slots=True)
class CatalogueSpec:
    """Sizes and weights of the generated population (see the module docstring)."""

    n_users: int = 600
    n_items: int = 1000
    n_categories: int = 8
    latent_dim: int = 8
    concentration: float = 0.3
    category_weight: float = 1.0
    latent_weight: float = 1.5
    quality_weight: float = 1.0
    min_history: int = 5
    mean_extra_history: float = 15.0
    top_share: float = 0.03
    sharpness: float = 2.0
    max_attraction: float = 0.6
    seed: int = 0

    def __post_init__(self) -> None:
        if not 2 <= self.n_categories <= len(CATEGORIES):
            raise ValueError(f"n_categories must lie in [2, {len(CATEGORIES)}].")
        if self.n_users < 1 or self.latent_dim < 1 or self.min_history < 1:
            raise ValueError("n_users, latent_dim and min_history must be at least 1.")
        if self.n_items < 2 * (self.min_history + self.mean_extra_history):
            raise ValueError("n_items must be at least twice the mean history length.")
        if not 0.0 < self.top_share < 1.0 or not 0.0 < self.max_attraction <= 1.0:
            raise ValueError("top_share must lie in (0, 1) and max_attraction in (0, 1].")
        if self.concentration <= 0 or self.sharpness <= 0 or self.mean_extra_history < 0:
            raise ValueError("concentration and sharpness must be positive.")


@dataclass(frozen=True, slots=True)
class Catalogue:
    """A generated population.

    Attributes
    ----------
    dataset : arms.data.Dataset
        The interactions (every user's history) and the item catalogue, as the arms read them.
    user_ids, item_ids : ndarray of int64
        Raw ids of the dense user and item indices (users 1..U, items 1..I).
    category : ndarray of int64, shape (I,)
        Each item's category (index into ``category_names``).
    category_names : tuple of str
    attraction : ndarray of float32, shape (U, I)
        Click probability of each (user, item) once examined (history items included).
    """

    dataset: Dataset
    user_ids: np.ndarray
    item_ids: np.ndarray
    category: np.ndarray
    category_names: tuple[str, ...]
    attraction: np.ndarray


def _titles(rng: np.random.Generator, words: list[tuple[str, ...]]) -> list[str]:
    """One distinct title per item, from its category's words (``words[i]``)."""
    titles: list[str] = []
    seen: set[str] = set()
    for vocab in words:
        while True:
            a, b = rng.choice(len(vocab), size=2, replace=False)
            adj = _ADJECTIVES[rng.integers(len(_ADJECTIVES))]
            form = rng.integers(3)
            if form == 0:
                name = f"The {adj} {vocab[a]}"
            elif form == 1:
                name = f"The {vocab[a]} of the {vocab[b]}"
            else:
                name = f"{vocab[a]} and {vocab[b]}"
            title = f"{name} ({rng.integers(1950, 2025)})"
            if title not in seen:
                seen.add(title)
                titles.append(title)
                break
    return titles


def _utilities(spec: CatalogueSpec, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Item categories and the (U, I) utility table."""
    c, r = spec.n_categories, spec.latent_dim
    category = rng.integers(c, size=spec.n_items)
    quality = rng.standard_normal(spec.n_items)
    z = rng.standard_normal((spec.n_items, r)) / np.sqrt(r)
    theta = rng.dirichlet(np.full(c, spec.concentration), size=spec.n_users)
    w = rng.standard_normal((spec.n_users, r))
    eta = (
        spec.category_weight * np.log(theta[:, category] + 0.01)
        + spec.latent_weight * (w @ z.T)
        + spec.quality_weight * quality[None, :]
    )
    return category, eta


def make_catalogue(spec: CatalogueSpec | None = None) -> Catalogue:
    """Generate the catalogue, the users, their histories and attractions from ``spec.seed``."""
    spec = spec or CatalogueSpec()
    rng = np.random.default_rng([spec.seed, 0xCA7A])
    names = tuple(list(CATEGORIES)[: spec.n_categories])
    category, eta = _utilities(spec, rng)
    titles = _titles(rng, [CATEGORIES[names[k]] for k in category])
    texts = tuple(f"{t}. Genres: {names[k]}" for t, k in zip(titles, category, strict=True))
    genres = np.zeros((spec.n_items, len(names)), dtype=bool)
    genres[np.arange(spec.n_items), category] = True
    item_ids = np.arange(1, spec.n_items + 1, dtype=np.int64)
    user_ids = np.arange(1, spec.n_users + 1, dtype=np.int64)

    lengths = spec.min_history + rng.poisson(spec.mean_extra_history, size=spec.n_users)
    lengths = np.minimum(lengths, spec.n_items // 2)
    gumbel = eta + rng.gumbel(size=eta.shape)  # top-n of eta + Gumbel: sampling without replacement
    order = np.argsort(-gumbel, axis=1)
    users, items, times = [], [], []
    for u, n in enumerate(lengths.tolist()):
        users.append(np.full(n, user_ids[u]))
        items.append(item_ids[order[u, :n]])
        times.append(_START_S + _DAY_S * np.arange(n))
    inter = Interactions(np.concatenate(users), np.concatenate(items), np.concatenate(times))

    tau = float(np.quantile(eta, 1.0 - spec.top_share))
    attraction = spec.max_attraction / (1.0 + np.exp(-spec.sharpness * (eta - tau)))
    return Catalogue(
        dataset=Dataset(inter, ItemCatalog(item_ids, texts, genres, names)),
        user_ids=user_ids,
        item_ids=item_ids,
        category=category.astype(np.int64),
        category_names=names,
        attraction=attraction.astype(np.float32),
    )


def write_dataset(dataset: Dataset, folder: str | Path) -> Path:
    """Write ``interactions.csv`` and ``items.csv`` (the generic layout of :mod:`arms.data`).

    ``bandit-fusion arms train --data FOLDER`` and :func:`arms.data.load_dataset` read it back.
    """
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    dataset.interactions.to_frame().to_csv(root / "interactions.csv", index=False)
    cat = dataset.items
    genres = [
        "|".join(n for n, on in zip(cat.genre_names, row, strict=True) if on) for row in cat.genres
    ]
    pd.DataFrame({"item": cat.item_ids, "text": cat.texts, "genres": genres}).to_csv(
        root / "items.csv", index=False
    )
    return root
