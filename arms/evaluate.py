"""Train arms on a temporal split and evaluate their top-k lists against the held-out interactions.

Protocol (what the ``bandit-fusion arms`` commands run): every interaction is an
implicit positive; :func:`arms.data.temporal_split` holds out each user's latest 20%;
each arm recommends ``k`` items per test user from the whole catalogue, excluding the
user's training items; the relevant items are the user's distinct held-out items that are
not among their training items (users left with none are skipped by the metrics).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from arms.base import BaseArm
from arms.data import Interactions, ItemCatalog
from arms.metrics import catalogue_coverage, intra_list_diversity, ndcg_at_k, recall_at_k
from arms.registry import make_arm

__all__ = ["evaluate_arm", "evaluate_arms", "train_arms"]


def train_arms(
    names: Iterable[str],
    train: Interactions,
    items: ItemCatalog,
    params: dict[str, dict[str, Any]] | None = None,
    progress: bool = False,
) -> Iterator[BaseArm]:
    """Build each named arm with ``params[name]`` and fit it on ``train``; yields fitted arms."""
    names = list(names)
    for name in tqdm(names, desc="training arms", disable=not progress):
        yield make_arm(name, **(params or {}).get(name, {})).fit(train, items)


def evaluate_arm(
    arm: BaseArm,
    test: Interactions,
    items: ItemCatalog,
    k: int = 10,
    batch_size: int = 512,
    progress: bool = False,
) -> dict[str, float]:
    """Recall@k, NDCG@k, catalogue coverage and genre intra-list diversity of one fitted arm.

    Returns
    -------
    dict
        ``{"recall@k": ..., "ndcg@k": ..., "coverage": ..., "diversity": ..., "users": n}``
    """
    users = np.unique(test.users)
    order = np.argsort(test.users, kind="stable")
    grouped = np.split(test.items[order], np.flatnonzero(np.diff(test.users[order])) + 1)
    # Relevant = distinct held-out items not already in training (setdiff1d deduplicates):
    # training items are never recommended with exclude_seen=True, so they would only
    # inflate min(k, |relevant|).
    relevant = [
        np.setdiff1d(g, arm.seen_items(int(u))) for u, g in zip(users, grouped, strict=True)
    ]
    lists = []
    for start in tqdm(
        range(0, len(users), batch_size),
        desc=f"scoring {arm.name}",
        disable=not progress,
        leave=False,
    ):
        ids, _ = arm.top_k(users[start : start + batch_size], k, exclude_seen=True)
        lists.append(ids.numpy())
    recommended = np.concatenate(lists) if lists else np.zeros((0, k), dtype=np.int64)
    features = dict(zip(items.item_ids.tolist(), items.genres.astype(np.float64), strict=True))
    return {
        f"recall@{k}": recall_at_k(recommended, relevant),
        f"ndcg@{k}": ndcg_at_k(recommended, relevant),
        "coverage": catalogue_coverage(recommended, len(items)),
        "diversity": intra_list_diversity(recommended, features) if items.genres.shape[1] else 0.0,
        "users": float(len(users)),
    }


def evaluate_arms(
    arms: Iterable[BaseArm],
    test: Interactions,
    items: ItemCatalog,
    k: int = 10,
    progress: bool = False,
) -> Iterator[dict[str, Any]]:
    """One flat row per arm: ``{"arm": name, "recall@k": ..., ...}`` (ready for a DataFrame)."""
    for arm in arms:
        yield {"arm": arm.name, **evaluate_arm(arm, test, items, k=k, progress=progress)}
