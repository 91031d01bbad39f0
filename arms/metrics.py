"""Offline ranking metrics over top-k lists: precision, recall, NDCG, coverage, diversity.

Every function takes ``recommended``, an int array of shape (n_users, k) of item ids
(best first; -1 marks an empty slot). The ``*_per_user`` functions return one value per
user (what the bootstrap resamples); the others return a mean over users.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "catalogue_coverage",
    "intra_list_diversity",
    "list_overlap",
    "ndcg_at_k",
    "ndcg_per_user",
    "precision_per_user",
    "recall_at_k",
    "recall_per_user",
]


def _hits(recommended: np.ndarray, relevant: Sequence[np.ndarray]) -> np.ndarray:
    if len(recommended) != len(relevant):
        raise ValueError(
            f"recommended has {len(recommended)} rows but relevant has {len(relevant)} entries."
        )
    return (
        np.stack(
            [np.isin(row, rel) & (row >= 0) for row, rel in zip(recommended, relevant, strict=True)]
        )
        if len(recommended)
        else np.zeros((0, recommended.shape[1] if recommended.ndim == 2 else 0), dtype=bool)
    )


def precision_per_user(recommended: np.ndarray, relevant: Sequence[np.ndarray]) -> np.ndarray:
    """``hits / k`` per user, shape (n_users,).

    >>> precision_per_user(np.array([[1, 2, 3, 4]]), [np.array([2, 9])]).tolist()
    [0.25]
    """
    hits = _hits(recommended, relevant)
    return hits.sum(1) / max(recommended.shape[1] if recommended.ndim == 2 else 1, 1)


def recall_per_user(recommended: np.ndarray, relevant: Sequence[np.ndarray]) -> np.ndarray:
    """``hits / |relevant|`` per user (NaN where nothing is relevant), shape (n_users,).

    True recall: a user with 30 relevant items can reach at most ``k / 30`` at k.

    >>> recall_per_user(np.array([[1, 2, 3]]), [np.array([2, 9, 8, 7])]).tolist()
    [0.25]
    """
    hits = _hits(recommended, relevant)
    sizes = np.array([len(r) for r in relevant], dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(sizes > 0, hits.sum(1) / sizes, np.nan)


def ndcg_per_user(recommended: np.ndarray, relevant: Sequence[np.ndarray]) -> np.ndarray:
    """Binary-relevance NDCG@k per user (NaN where nothing is relevant), shape (n_users,).

    .. math::

        \\mathrm{DCG} = \\sum_{r=1}^{k} \\frac{\\mathrm{rel}_r}{\\log_2(r + 1)}, \\qquad
        \\mathrm{NDCG} = \\mathrm{DCG} / \\mathrm{DCG}_{ideal}

    >>> [round(v, 4) for v in ndcg_per_user(np.array([[9, 1]]), [np.array([1])])]
    [0.6309]
    """
    hits = _hits(recommended, relevant).astype(np.float64)
    sizes = np.array([len(r) for r in relevant], dtype=np.int64)
    k = recommended.shape[1] if recommended.ndim == 2 else 0
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.r_[np.nan, np.cumsum(discounts)][np.minimum(k, sizes)]
    return (hits @ discounts) / ideal


def recall_at_k(recommended: np.ndarray, relevant: Sequence[np.ndarray]) -> float:
    """Mean true recall ``hits / |relevant|`` over users with at least one relevant item.

    >>> recall_at_k(np.array([[1, 2, 3]]), [np.array([2, 9])])
    0.5
    """
    values = recall_per_user(recommended, relevant)
    return float(np.nanmean(values)) if np.any(~np.isnan(values)) else 0.0


def ndcg_at_k(recommended: np.ndarray, relevant: Sequence[np.ndarray]) -> float:
    """Mean binary-relevance NDCG@k over users with at least one relevant item.

    >>> round(ndcg_at_k(np.array([[9, 1]]), [np.array([1])]), 4)
    0.6309
    """
    values = ndcg_per_user(recommended, relevant)
    return float(np.nanmean(values)) if np.any(~np.isnan(values)) else 0.0


def catalogue_coverage(recommended: np.ndarray, n_items: int) -> float:
    """Share of the ``n_items`` catalogue that appears in at least one list.

    >>> catalogue_coverage(np.array([[1, 2], [2, 3]]), 10)
    0.3
    """
    if n_items <= 0:
        raise ValueError(f"n_items must be positive, got {n_items}.")
    shown = np.unique(recommended[recommended >= 0])
    return float(len(shown) / n_items)


def intra_list_diversity(recommended: np.ndarray, features: dict[int, np.ndarray]) -> float:
    """Mean pairwise cosine distance between the feature vectors (e.g. genre flags) in a list.

    Items without features (all zeros, or missing from ``features``) count as
    orthogonal to every other item. Lists shorter than two items are skipped.

    >>> f = {1: np.array([1, 0]), 2: np.array([1, 0]), 3: np.array([0, 1])}
    >>> round(intra_list_diversity(np.array([[1, 2, 3]]), f), 4)
    0.6667
    """
    scores = []
    dim = len(next(iter(features.values()))) if features else 0
    for row in recommended:
        ids = [int(i) for i in row if i >= 0]
        if len(ids) < 2:
            continue
        mat = np.stack([np.asarray(features.get(i, np.zeros(dim)), dtype=np.float64) for i in ids])
        norms = np.linalg.norm(mat, axis=1)
        unit = mat / np.where(norms > 0, norms, 1.0)[:, None]
        sim = unit @ unit.T
        n = len(ids)
        mean_sim = (sim.sum() - np.trace(sim)) / (n * (n - 1))
        scores.append(1.0 - mean_sim)
    return float(np.mean(scores)) if scores else 0.0


def list_overlap(first: np.ndarray, second: np.ndarray) -> float:
    """Mean share of a user's first list that also appears in their second list.

    Both arrays have shape (n_users, k) and rows for the same users; empty slots (-1)
    never match.

    >>> list_overlap(np.array([[1, 2, 3, 4]]), np.array([[4, 3, 9, -1]]))
    0.5
    """
    if first.shape != second.shape:
        raise ValueError(
            f"first and second must have the same shape, got {first.shape} and {second.shape}."
        )
    if first.size == 0:
        return 0.0
    same = (first[:, :, None] == second[:, None, :]) & (first[:, :, None] >= 0)
    return float(same.any(2).sum(1).mean() / first.shape[1])
