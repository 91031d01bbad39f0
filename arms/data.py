"""Interaction and item tables, their loaders, and the temporal train/test split.

Two layouts are read:

* MovieLens-100K as GroupLens ships it: ``u.data`` (tab-separated
  ``user item rating timestamp``), ``u.item`` (``|``-separated, Latin-1: id, title,
  dates, URL, 19 genre flags) and ``u.genre``;
* a generic pair of tables, CSV or Parquet: ``interactions`` with columns
  ``user, item, timestamp, value`` and ``items`` with columns ``item, text`` and an
  optional ``genres`` column (``|``-separated names).

User and item ids are integers (``int64``); timestamps are integer seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

__all__ = [
    "Dataset",
    "Interactions",
    "ItemCatalog",
    "load_dataset",
    "load_interactions",
    "load_items",
    "load_movielens_100k",
    "temporal_split",
]


def _as_1d(values: object, name: str, dtype: type) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}.")
    if dtype is np.int64 and array.size and not np.issubdtype(array.dtype, np.integer):
        if np.issubdtype(array.dtype, np.floating) and np.all(np.mod(array, 1) == 0):
            array = array.astype(np.int64)
        else:
            raise ValueError(f"{name} must hold integers, got dtype {array.dtype}.")
    return np.ascontiguousarray(array, dtype=dtype)


@dataclass(frozen=True, slots=True)
class Interactions:
    """Implicit-feedback events, one row per (user, item) interaction.

    Attributes
    ----------
    users, items : numpy.ndarray of int64, shape (n,)
        Raw user and item ids.
    timestamps : numpy.ndarray of int64, shape (n,)
        Event times in seconds; the temporal split and recency weights use them.
    values : numpy.ndarray of float32, shape (n,)
        Strength of the interaction (a rating, a count); 1 where the source has none.

    Examples
    --------
    >>> inter = Interactions([1, 1, 2], [10, 11, 10], [5, 6, 7], [1.0, 1.0, 1.0])
    >>> len(inter), inter.n_users, inter.n_items
    (3, 2, 2)
    """

    users: np.ndarray
    items: np.ndarray
    timestamps: np.ndarray
    values: np.ndarray

    def __init__(
        self,
        users: object,
        items: object,
        timestamps: object | None = None,
        values: object | None = None,
    ) -> None:
        u = _as_1d(users, "users", np.int64)
        i = _as_1d(items, "items", np.int64)
        t = (
            np.zeros(len(u), dtype=np.int64)
            if timestamps is None
            else _as_1d(timestamps, "timestamps", np.int64)
        )
        v = (
            np.ones(len(u), dtype=np.float32)
            if values is None
            else _as_1d(values, "values", np.float32)
        )
        if not len(u) == len(i) == len(t) == len(v):
            raise ValueError(
                "users, items, timestamps and values must have the same length, got "
                f"{len(u)}, {len(i)}, {len(t)} and {len(v)}."
            )
        if not np.all(np.isfinite(v)):
            raise ValueError("values must be finite.")
        object.__setattr__(self, "users", u)
        object.__setattr__(self, "items", i)
        object.__setattr__(self, "timestamps", t)
        object.__setattr__(self, "values", v)

    def __len__(self) -> int:
        return len(self.users)

    @property
    def n_users(self) -> int:
        """Number of distinct users."""
        return len(np.unique(self.users))

    @property
    def n_items(self) -> int:
        """Number of distinct items."""
        return len(np.unique(self.items))

    def subset(self, mask: np.ndarray) -> Interactions:
        """Rows where ``mask`` (bool, shape (n,)) is true, or rows at the given indices."""
        return Interactions(
            self.users[mask], self.items[mask], self.timestamps[mask], self.values[mask]
        )

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> Interactions:
        """Read columns ``user``, ``item`` and optional ``timestamp``, ``value``."""
        missing = {"user", "item"} - set(frame.columns)
        if missing:
            raise ValueError(f"interactions table lacks columns {sorted(missing)}.")
        return cls(
            frame["user"].to_numpy(),
            frame["item"].to_numpy(),
            frame["timestamp"].to_numpy() if "timestamp" in frame else None,
            frame["value"].to_numpy() if "value" in frame else None,
        )

    def to_frame(self) -> pd.DataFrame:
        """The table with columns ``user, item, timestamp, value``."""
        return pd.DataFrame(
            {
                "user": self.users,
                "item": self.items,
                "timestamp": self.timestamps,
                "value": self.values,
            }
        )


@dataclass(frozen=True, slots=True)
class ItemCatalog:
    """The items that can be recommended, with their text and genres.

    Attributes
    ----------
    item_ids : numpy.ndarray of int64, shape (n_items,)
        Unique raw item ids.
    texts : tuple of str, length n_items
        What the content arm embeds (title plus genres or attributes).
    genres : numpy.ndarray of bool, shape (n_items, n_genres)
        Genre flags; intra-list diversity is measured on them (may have 0 columns).
    genre_names : tuple of str, length n_genres
    """

    item_ids: np.ndarray
    texts: tuple[str, ...]
    genres: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=bool))
    genre_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        ids = _as_1d(self.item_ids, "item_ids", np.int64)
        if len(np.unique(ids)) != len(ids):
            raise ValueError("item_ids must be unique.")
        texts = tuple(str(t) for t in self.texts)
        if len(texts) != len(ids):
            raise ValueError(f"texts has {len(texts)} entries for {len(ids)} item_ids.")
        genres = np.asarray(self.genres, dtype=bool)
        if genres.size == 0:
            genres = np.zeros((len(ids), len(self.genre_names)), dtype=bool)
        if genres.shape[0] != len(ids) or genres.ndim != 2:
            raise ValueError(f"genres must have shape ({len(ids)}, n_genres), got {genres.shape}.")
        object.__setattr__(self, "item_ids", ids)
        object.__setattr__(self, "texts", texts)
        object.__setattr__(self, "genres", genres)
        object.__setattr__(self, "genre_names", tuple(self.genre_names))

    def __len__(self) -> int:
        return len(self.item_ids)

    def text_of(self, item_ids: np.ndarray) -> list[str]:
        """Texts of the given items, in their order (ids must be in the catalogue)."""
        pos = _positions(self.item_ids, np.asarray(item_ids, dtype=np.int64), "item_ids")
        return [self.texts[p] for p in pos]

    def genres_of(self, item_ids: np.ndarray) -> np.ndarray:
        """Genre flags of the given items, shape (len(item_ids), n_genres)."""
        pos = _positions(self.item_ids, np.asarray(item_ids, dtype=np.int64), "item_ids")
        return self.genres[pos]


def _positions(universe: np.ndarray, ids: np.ndarray, name: str) -> np.ndarray:
    order = np.argsort(universe, kind="stable")
    sorted_ids = universe[order]
    pos = np.searchsorted(sorted_ids, ids)
    pos = np.clip(pos, 0, max(len(sorted_ids) - 1, 0))
    if len(sorted_ids) == 0 or np.any(sorted_ids[pos] != ids):
        raise ValueError(f"{name} holds ids that are not in the catalogue.")
    return order[pos]


@dataclass(frozen=True, slots=True)
class Dataset:
    """Interactions together with the item catalogue they refer to."""

    interactions: Interactions
    items: ItemCatalog


# ---------------------------------------------------------------------------- loaders


def load_movielens_100k(path: str | Path) -> Dataset:
    """Read MovieLens-100K from the folder GroupLens ships (``u.data``, ``u.item``, ``u.genre``).

    Every rating counts as one implicit interaction; its value is the rating (1-5).
    Item text is ``"<title>. Genres: <g1>, <g2>"`` (item 267, titled "unknown", has none).
    """
    root = Path(path)
    if not (root / "u.data").is_file():
        raise FileNotFoundError(f"{root} does not hold MovieLens-100K's u.data.")
    ratings = pd.read_csv(
        root / "u.data", sep="\t", header=None, names=["user", "item", "value", "timestamp"]
    )
    genre_table = pd.read_csv(
        root / "u.genre", sep="|", header=None, names=["name", "idx"], encoding="latin-1"
    ).dropna()
    genre_names = tuple(genre_table.sort_values("idx")["name"].astype(str))
    columns = ["item", "title", "release", "video", "url", *genre_names]
    raw = pd.read_csv(
        root / "u.item",
        sep="|",
        header=None,
        names=columns,
        encoding="latin-1",
        dtype={"title": str},
    )
    flags = raw[list(genre_names)].to_numpy(dtype=bool)
    texts = []
    for title, row in zip(raw["title"].fillna("").astype(str), flags, strict=True):
        names = [g for g, on in zip(genre_names, row, strict=True) if on and g != "unknown"]
        texts.append(f"{title}. Genres: {', '.join(names)}" if names else title)
    items = ItemCatalog(raw["item"].to_numpy(), tuple(texts), flags, genre_names)
    return Dataset(Interactions.from_frame(ratings), items)


def _read_table(path: Path) -> pd.DataFrame:
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix in {".csv", ".tsv"}:
        return pd.read_csv(path, sep="\t" if path.suffix == ".tsv" else ",")
    raise ValueError(f"path must end in .csv, .tsv or .parquet, got {path.name!r}.")


def load_interactions(path: str | Path) -> Interactions:
    """Read a generic interactions table (``user, item[, timestamp][, value]``), CSV or Parquet."""
    return Interactions.from_frame(_read_table(Path(path)))


def load_items(path: str | Path) -> ItemCatalog:
    """Read a generic items table (``item, text[, genres]``), CSV or Parquet.

    ``genres``, when present, holds ``|``-separated genre names per item.
    """
    frame = _read_table(Path(path))
    missing = {"item", "text"} - set(frame.columns)
    if missing:
        raise ValueError(f"items table lacks columns {sorted(missing)}.")
    texts = tuple(frame["text"].fillna("").astype(str))
    if "genres" not in frame:
        return ItemCatalog(frame["item"].to_numpy(), texts)
    lists = [
        [g for g in str(s).split("|") if g] if isinstance(s, str) else [] for s in frame["genres"]
    ]
    names = tuple(sorted({g for gs in lists for g in gs}))
    col = {g: j for j, g in enumerate(names)}
    flags = np.zeros((len(frame), len(names)), dtype=bool)
    for row, gs in enumerate(lists):
        flags[row, [col[g] for g in gs]] = True
    return ItemCatalog(frame["item"].to_numpy(), texts, flags, names)


def load_dataset(path: str | Path) -> Dataset:
    """Read a folder in either layout: MovieLens-100K, or ``interactions.*`` plus ``items.*``.

    Items that occur in the interactions but not in the items table are added with empty text.
    """
    root = Path(path)
    if (root / "u.data").is_file():
        return load_movielens_100k(root)
    found = {}
    for stem in ("interactions", "items"):
        for suffix in (".parquet", ".csv", ".tsv"):
            if (root / f"{stem}{suffix}").is_file():
                found[stem] = root / f"{stem}{suffix}"
                break
    if set(found) != {"interactions", "items"}:
        raise FileNotFoundError(
            f"{root} holds neither u.data (MovieLens-100K) nor interactions.* and items.* tables."
        )
    inter = load_interactions(found["interactions"])
    items = load_items(found["items"])
    extra = np.setdiff1d(np.unique(inter.items), items.item_ids)
    if len(extra):
        items = ItemCatalog(
            np.concatenate([items.item_ids, extra]),
            items.texts + ("",) * len(extra),
            np.vstack([items.genres, np.zeros((len(extra), items.genres.shape[1]), dtype=bool)]),
            items.genre_names,
        )
    return Dataset(inter, items)


# ---------------------------------------------------------------------------- split


def temporal_split(
    interactions: Interactions,
    test_fraction: float = 0.2,
    by: Literal["user", "global"] = "user",
) -> tuple[Interactions, Interactions]:
    """Split interactions in time so that nothing in test happens before its train history.

    Parameters
    ----------
    interactions : Interactions
    test_fraction : float in (0, 1)
        Share of interactions held out (per user or overall, see ``by``).
    by : {"user", "global"}
        ``"user"`` (the default): a separate cut per user. Each user's latest
        ``ceil(test_fraction * n_u)`` interactions go to test, but every user keeps at
        least one in train (users with a single interaction are train-only). Ties in time
        are broken by row order.
        ``"global"``: one cut-off time for everybody, at the ``1 - test_fraction``
        quantile of all timestamps; interactions strictly after it are test.

    Notes
    -----
    ``by="user"`` only orders each user's own history: user A's test interactions can
    be older than user B's training interactions. Training therefore can contain
    other users' interactions from after a test user's held-out period, so arms that
    pool interactions across users (popularity, item-kNN co-occurrence, matrix
    factorisation) may learn from the "future" of the test period, e.g. an item that
    becomes popular later. This cross-user leak tends to inflate offline metrics.
    ``by="global"`` cannot leak this way: every training interaction happens no later
    than every test interaction. The default stays ``"user"`` (every test user keeps
    a training history); pass ``by="global"`` for a leak-free estimate.

    Returns
    -------
    train, test : Interactions

    Examples
    --------
    >>> inter = Interactions([1] * 5, [1, 2, 3, 4, 5], [50, 40, 30, 20, 10])
    >>> train, test = temporal_split(inter, 0.4)
    >>> test.items.tolist(), train.items.tolist()
    ([1, 2], [3, 4, 5])
    """
    if not 0.0 < float(test_fraction) < 1.0:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}.")
    n = len(interactions)
    if by == "global":
        if n == 0:
            return interactions, interactions
        cut = np.quantile(interactions.timestamps, 1.0 - test_fraction, method="lower")
        is_test = interactions.timestamps > cut
        return interactions.subset(~is_test), interactions.subset(is_test)
    if by != "user":
        raise ValueError(f"by must be 'user' or 'global', got {by!r}.")
    order = np.lexsort((np.arange(n), interactions.timestamps, interactions.users))
    users_sorted = interactions.users[order]
    starts = (
        np.flatnonzero(np.r_[True, users_sorted[1:] != users_sorted[:-1]])
        if n
        else np.array([], int)
    )
    counts = np.diff(np.r_[starts, n])
    n_test = np.minimum(np.ceil(test_fraction * counts).astype(np.int64), counts - 1)
    rank = np.arange(n) - np.repeat(starts, counts)
    is_test_sorted = rank >= np.repeat(counts - n_test, counts)
    idx_test = np.sort(order[is_test_sorted])
    idx_train = np.sort(order[~is_test_sorted])
    return interactions.subset(idx_train), interactions.subset(idx_test)
