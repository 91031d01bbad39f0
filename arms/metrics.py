"""Offline ranking metrics over top-k lists: Recall@k, NDCG@k, coverage, intra-list diversity.

Every function takes ``recommended``, an int array of shape (n_users, k) of item ids
(best first; -1 marks an empty slot), and returns a mean over users.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["catalogue_coverage", "intra_list_diversity", "ndcg_at_k", "recall_at_k"]


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


def recall_at_k(recommended: np.ndarray, relevant: Sequence[np.ndarray]) -> float:
    """Mean of ``hits / min(k, |relevant|)`` over users with at least one relevant item.

    The ``min`` (as in Liang et al., 2018) makes 1.0 reachable when a user has more
    than ``k`` relevant items.

    >>> recall_at_k(np.array([[1, 2, 3]]), [np.array([2, 9])])
    0.5
    """
    hits = _hits(recommended, relevant)
    sizes = np.array([len(r) for r in relevant])
    keep = sizes > 0
    if not keep.any():
        return 0.0
    k = recommended.shape[1]
    return float(np.mean(hits[keep].sum(1) / np.minimum(k, sizes[keep])))


def ndcg_at_k(recommended: np.ndarray, relevant: Sequence[np.ndarray]) -> float:
    """Mean binary-relevance NDCG@k over users with at least one relevant item.

    .. math::

        \\mathrm{DCG} = \\sum_{r=1}^{k} \\frac{\\mathrm{rel}_r}{\\log_2(r + 1)}, \\qquad
        \\mathrm{NDCG} = \\mathrm{DCG} / \\mathrm{DCG}_{ideal}

    >>> round(ndcg_at_k(np.array([[9, 1]]), [np.array([1])]), 4)
    0.6309
    """
    hits = _hits(recommended, relevant).astype(np.float64)
    sizes = np.array([len(r) for r in relevant])
    keep = sizes > 0
    if not keep.any():
        return 0.0
    k = recommended.shape[1]
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = hits[keep] @ discounts
    ideal = np.cumsum(discounts)[np.minimum(k, sizes[keep]) - 1]
    return float(np.mean(dcg / ideal))


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
