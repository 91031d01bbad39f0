"""The MovieLens world: a temporal split, the arms trained on it and their top-N candidates.

Training the arms takes about a minute on a CPU (BERT embeddings and MF dominate), and a run of
T = 20,000 requests must not re-score the catalogue: :func:`build_world` trains every arm once,
stores each arm's ``n_candidates`` best unseen items per user in an ``.npz`` file under
``cache_dir`` (keyed by the data files and every setting that changes the lists), and later
calls read that file back.

Scenarios change the world, not the simulator:

* ``main`` -- arms trained on every user's earliest 80% of ratings;
* ``cold-start`` -- a third of the users (drawn with ``seed``) keep only their first training
  rating, and the arms are retrained on what is left;
* ``drift`` -- as ``main``, plus the lists of a *stale* copy of the first arm (trained on a
  random tenth of the training ratings), which replaces it in the middle of the run.

Everything is indexed densely: users ``0..U-1`` and items ``0..I-1`` (rows of
``user_ids`` / ``item_ids``); an empty candidate slot holds ``-1``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "DEFAULT_ARMS",
    "SCENARIOS",
    "STALE_SUFFIX",
    "World",
    "build_world",
    "default_cache_dir",
]

DEFAULT_ARMS: tuple[str, ...] = ("mf", "item-knn", "popularity", "bert")
"""Arms trained by default (the ``random`` arm is available but never useful here)."""

SCENARIOS: tuple[str, ...] = ("main", "cold-start", "drift")
STALE_SUFFIX = "-stale"
_FORMAT = 2


def default_cache_dir() -> Path:
    """``$BANDIT_FUSION_CACHE/movielens`` or ``~/.cache/bandit-fusion/movielens``."""
    import os

    root = os.environ.get("BANDIT_FUSION_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "bandit-fusion") / "movielens"


@dataclass(frozen=True, slots=True)
class World:
    """Everything the simulator reads: candidate lists, held-out ratings, users and genres.

    Attributes
    ----------
    scenario : str
    arm_names : tuple of str
        Names of the rows of ``lists`` (the drift scenario adds ``"<first arm>-stale"``).
    lists : ndarray of int32, shape (n_lists, U, N)
        Each arm's best ``N`` items per user, best first, training items left out; ``-1``
        marks an empty slot.
    scores : ndarray of float32, shape (n_lists, U, N)
        The arm's scores of those items (``-inf`` in empty slots).
    user_ids, item_ids : ndarray of int64
        Raw MovieLens ids of the dense user and item indices.
    test_users, test_items : ndarray of int64
        Dense indices of the held-out (user, item) pairs.
    test_ratings : ndarray of float32
        Their ratings (1-5).
    history_users, history_items : ndarray of int64
        Every (user, item) pair in the full training part (before any cold-start cut): items
        the user already rated, which they never click again.
    train_counts : ndarray of int64, shape (U,)
        Training ratings the arms saw per user.
    cold : ndarray of bool, shape (U,)
        Users cut down to a single training rating (cold-start scenario).
    genres : ndarray of bool, shape (I, G)
    attraction : ndarray of float32, shape (U, I), or None
        Click probability of each (user, item) once examined, when the population is
        synthetic and its tastes are known (:mod:`simulations.catalogue`); None: the click
        model derives it from the held-out ratings.
    """

    scenario: str
    arm_names: tuple[str, ...]
    lists: np.ndarray
    scores: np.ndarray
    user_ids: np.ndarray
    item_ids: np.ndarray
    test_users: np.ndarray
    test_items: np.ndarray
    test_ratings: np.ndarray
    history_users: np.ndarray
    history_items: np.ndarray
    train_counts: np.ndarray
    cold: np.ndarray
    genres: np.ndarray
    attraction: np.ndarray | None = None

    @property
    def n_users(self) -> int:
        """Number of users U."""
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        """Catalogue size I."""
        return len(self.item_ids)

    @property
    def n_candidates(self) -> int:
        """Candidates N cached per arm and user."""
        return int(self.lists.shape[2])

    def list_index(self, name: str) -> int:
        """Row of ``lists`` holding arm ``name``."""
        if name not in self.arm_names:
            raise ValueError(f"arm {name!r} is not in this world; it has {self.arm_names}.")
        return self.arm_names.index(name)

    def segments(self) -> tuple[np.ndarray, tuple[str, ...]]:
        """User segments: ``cold`` users, then activity tertiles of the others.

        Returns the segment of every user (shape ``(U,)``) and the segment names.
        Tertiles are cut on the training counts of the users who are not cold.
        """
        warm = ~self.cold
        counts = self.train_counts[warm]
        cuts = np.quantile(counts, [1 / 3, 2 / 3]) if counts.size else np.zeros(2)
        tertile = np.searchsorted(cuts, self.train_counts, side="right")
        names: list[str] = ["low-activity", "mid-activity", "high-activity"]
        segment = tertile.astype(np.int64)
        if self.cold.any():
            names.append("cold-start")
            segment = np.where(self.cold, 3, segment)
        return segment, tuple(names)


def _fingerprint(data_dir: Path, settings: dict[str, Any]) -> str:
    h = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for name in ("u.data", "u.item"):
        stat = (data_dir / name).stat()
        h.update(f"{name}:{stat.st_size}:{int(stat.st_mtime)}".encode())
    return h.hexdigest()[:16]


def _arm_config(names: Sequence[str], seed: int, params: dict[str, dict[str, Any]]) -> list[str]:
    """Each arm's full constructor arguments (its ``repr``, defaults included), so that lists
    cached under older arm defaults are never read back after the defaults change."""
    from arms import make_arm

    return [
        repr(make_arm(n, **{"seed": seed, "device": "cpu", **params.get(n, {})})) for n in names
    ]


def _cold_cut(train: Any, seed: int) -> tuple[Any, np.ndarray]:
    """Keep only the first training rating of a random third of the users."""
    from arms.data import Interactions

    users = np.unique(train.users)
    rng = np.random.default_rng([seed, 0xC01D])
    cold_users = rng.choice(users, size=len(users) // 3, replace=False)
    order = np.lexsort((np.arange(len(train)), train.timestamps, train.users))
    first = np.r_[True, train.users[order][1:] != train.users[order][:-1]]
    keep = np.ones(len(train), dtype=bool)
    is_cold = np.isin(train.users[order], cold_users)
    keep[order[is_cold & ~first]] = False
    cut = Interactions(
        train.users[keep], train.items[keep], train.timestamps[keep], train.values[keep]
    )
    return cut, cold_users


def _top_lists(
    arm: Any, user_ids: np.ndarray, item_ids: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    ids, vals = arm.top_k(user_ids, n, exclude_seen=True)
    ids_np = ids.numpy()
    rows = np.searchsorted(item_ids, np.maximum(ids_np, item_ids[0]))
    rows = np.where(ids_np >= 0, rows, -1).astype(np.int32)
    return rows, vals.numpy().astype(np.float32)


def build_world(
    data_dir: str | Path,
    scenario: str = "main",
    *,
    arms: Sequence[str] = DEFAULT_ARMS,
    n_candidates: int = 200,
    test_fraction: float = 0.2,
    seed: int = 0,
    arm_params: dict[str, dict[str, Any]] | None = None,
    cache_dir: str | Path | None = None,
    device: str | None = "cpu",
    progress: bool = False,
) -> World:
    """Train the arms for ``scenario`` and return their candidate lists (cached on disk).

    Parameters
    ----------
    data_dir
        Folder holding MovieLens-100K (``u.data``, ``u.item``).
    scenario
        ``main``, ``cold-start`` or ``drift`` (see the module docstring).
    arms
        Arm names from :data:`arms.ARMS`; the first one goes stale in ``drift``.
    n_candidates
        Items cached per arm and user (enough to refill lists after consumption).
    test_fraction
        Share of each user's latest ratings held out (they drive the clicks).
    seed
        Seeds the arms, the cold-start users and the stale arm's sample.
    arm_params
        Per-arm constructor overrides, e.g. ``{"mf": {"factors": 32}}``.
    cache_dir
        Where the lists are cached (default :func:`default_cache_dir`).
    """
    if scenario not in SCENARIOS:
        raise ValueError(f"scenario must be one of {', '.join(SCENARIOS)}, got {scenario!r}.")
    names = tuple(arms)
    if len(names) < 2 or len(set(names)) != len(names):
        raise ValueError(f"arms must name at least two distinct arms, got {names}.")
    if n_candidates < 1:
        raise ValueError(f"n_candidates must be at least 1, got {n_candidates}.")
    root = Path(data_dir)
    if not (root / "u.data").is_file():
        raise ValueError(f"data_dir {root} does not hold MovieLens-100K (u.data).")
    params = arm_params or {}
    settings = {
        "format": _FORMAT,
        "scenario": scenario,
        "arms": names,
        "n_candidates": n_candidates,
        "test_fraction": test_fraction,
        "seed": seed,
        "arm_params": params,
        "arm_config": _arm_config(names, seed, params),
    }
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = folder / f"{scenario}-{_fingerprint(root, settings)}.npz"
    if path.is_file():
        return _load(path)
    world = _build(
        root, scenario, names, n_candidates, test_fraction, seed, params, device, progress
    )
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(
        tmp,
        meta=np.frombuffer(
            json.dumps({**settings, "arm_names": world.arm_names}).encode(), np.uint8
        ),
        **{f: getattr(world, f) for f in _ARRAYS},
    )
    tmp.replace(path)
    return world


_ARRAYS = (
    "lists",
    "scores",
    "user_ids",
    "item_ids",
    "test_users",
    "test_items",
    "test_ratings",
    "history_users",
    "history_items",
    "train_counts",
    "cold",
    "genres",
)


def _load(path: Path) -> World:
    with np.load(path) as npz:
        meta = json.loads(npz["meta"].tobytes().decode())
        arrays = {f: npz[f] for f in _ARRAYS}
    return World(scenario=meta["scenario"], arm_names=tuple(meta["arm_names"]), **arrays)


def _build(
    root: Path,
    scenario: str,
    names: tuple[str, ...],
    n_candidates: int,
    test_fraction: float,
    seed: int,
    params: dict[str, dict[str, Any]],
    device: str | None,
    progress: bool,
) -> World:
    from tqdm.auto import tqdm

    from arms import load_dataset, make_arm, temporal_split
    from arms.data import Interactions

    dataset = load_dataset(root)
    full_train, test = temporal_split(dataset.interactions, test_fraction, by="user")
    user_ids = np.unique(dataset.interactions.users)
    item_ids = np.asarray(dataset.items.item_ids)
    order = np.argsort(item_ids)
    item_ids, genres = item_ids[order], dataset.items.genres[order]
    train = full_train
    cold_raw = np.zeros(0, dtype=np.int64)
    if scenario == "cold-start":
        train, cold_raw = _cold_cut(full_train, seed)
    jobs: list[tuple[str, str, Interactions]] = [(n, n, train) for n in names]
    if scenario == "drift":
        rng = np.random.default_rng([seed, 0x57A1E])
        sample = rng.random(len(train)) < 0.1
        jobs.append((names[0] + STALE_SUFFIX, names[0], train.subset(sample)))
    lists, scores = [], []
    n = min(n_candidates, len(item_ids))
    for _, name, data in tqdm(jobs, desc=f"training arms ({scenario})", disable=not progress):
        arm = make_arm(name, **{"seed": seed, "device": device, **params.get(name, {})})
        arm.fit(data, dataset.items)
        rows, vals = _top_lists(arm, user_ids, item_ids, n)
        lists.append(rows)
        scores.append(vals)
    uidx = np.searchsorted(user_ids, test.users)
    iidx = np.searchsorted(item_ids, test.items)
    return World(
        scenario=scenario,
        arm_names=tuple(label for label, _, _ in jobs),
        lists=np.stack(lists),
        scores=np.stack(scores),
        user_ids=user_ids,
        item_ids=item_ids,
        test_users=uidx.astype(np.int64),
        test_items=iidx.astype(np.int64),
        test_ratings=test.values.astype(np.float32),
        history_users=np.searchsorted(user_ids, full_train.users).astype(np.int64),
        history_items=np.searchsorted(item_ids, full_train.items).astype(np.int64),
        train_counts=np.bincount(np.searchsorted(user_ids, train.users), minlength=len(user_ids)),
        cold=np.isin(user_ids, cold_raw),
        genres=np.asarray(genres, dtype=bool),
    )
