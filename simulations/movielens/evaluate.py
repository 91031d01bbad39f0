"""Offline ranking metrics of fixed-weight fusions of trained arms, on the held-out split.

The protocol is that of :mod:`arms.evaluate` (each arm recommends from the whole catalogue,
training items left out; the relevant items of a user are their distinct held-out items not
among their training items), except that the list scored is the fusion of the arms'
``n_candidates`` best items by one of :data:`bandit.FUSERS` with fixed weights.  ``arms``
cannot import ``bandit``, so this lives here and ``bandit-fusion arms evaluate --fusions``
calls it.

Metrics (means over users with at least one relevant item): precision@k (hits / k),
recall@k (hits / min(k, relevant), as :func:`arms.metrics.recall_at_k`), F1@k (per user, of
those two), NDCG@k, catalogue coverage and intra-list genre diversity.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["FusionScore", "evaluate_fusions", "precision_f1_at_k"]


@dataclass(frozen=True, slots=True)
class FusionScore:
    """Ranking metrics of one fuser with one weight vector (``weights`` in the arms' order)."""

    fuser: str
    weights_label: str
    weights: tuple[float, ...]
    precision: float
    recall: float
    f1: float
    ndcg: float
    coverage: float
    diversity: float
    users: int


def precision_f1_at_k(
    recommended: np.ndarray, relevant: Sequence[np.ndarray]
) -> tuple[float, float]:
    """Mean precision@k and mean per-user F1@k over users with a relevant item.

    Recall inside F1 is ``hits / min(k, |relevant|)``, as in :func:`arms.metrics.recall_at_k`.

    >>> precision_f1_at_k(np.array([[1, 2, 3, 4]]), [np.array([2, 9])])
    (0.25, 0.3333333333333333)
    """
    k = recommended.shape[1]
    sizes = np.array([len(r) for r in relevant])
    keep = sizes > 0
    if not keep.any():
        return 0.0, 0.0
    hits = np.array(
        [np.isin(row, rel).sum() for row, rel in zip(recommended, relevant, strict=True)]
    )[keep]
    precision = hits / k
    recall = hits / np.minimum(k, sizes[keep])
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(total), where=total > 0)
    return float(precision.mean()), float(f1.mean())


def _candidates(
    arms: Sequence[object], users: np.ndarray, n: int, batch: int
) -> tuple[np.ndarray, np.ndarray]:
    items, scores = [], []
    for arm in arms:
        ids_parts, val_parts = [], []
        for start in range(0, len(users), batch):
            ids, vals = arm.top_k(users[start : start + batch], n, exclude_seen=True)  # type: ignore[attr-defined]
            ids_parts.append(ids.numpy())
            val_parts.append(vals.numpy())
        items.append(np.concatenate(ids_parts))
        scores.append(np.concatenate(val_parts))
    return np.stack(items).astype(np.int64), np.stack(scores).astype(np.float64)


def evaluate_fusions(
    arms: Sequence[object],
    test: object,
    items: object,
    *,
    fusers: Sequence[str],
    weights: Sequence[tuple[str, Sequence[float]]] = (),
    k: int = 10,
    n_candidates: int = 50,
    seed: int = 0,
    batch: int = 256,
) -> list[FusionScore]:
    """Score every fuser with uniform weights and with each of ``weights`` on the test split.

    Parameters
    ----------
    arms
        Fitted arms (:class:`arms.BaseArm`), all trained on the same split.
    test, items
        The held-out :class:`arms.Interactions` and the :class:`arms.ItemCatalog`.
    fusers
        Names from :data:`bandit.FUSERS`.
    weights
        ``(label, weights)`` pairs, one weight per arm (in ``arms`` order) summing to 1.
    k
        List length.
    n_candidates
        Candidates each arm hands to the fuser (at least ``k``).
    seed
        Seeds the randomised fusers (slot-mix, team-draft).
    """
    from arms.metrics import catalogue_coverage, intra_list_diversity, ndcg_at_k, recall_at_k
    from bandit import make_fuser

    if len(arms) < 2:
        raise ValueError(f"arms must hold at least two fitted arms, got {len(arms)}.")
    if n_candidates < k:
        raise ValueError(f"n_candidates must be at least k={k}, got {n_candidates}.")
    n_arms = len(arms)
    runs: list[tuple[str, np.ndarray]] = [("uniform", np.full(n_arms, 1.0 / n_arms))]
    for label, given in weights:
        vector = np.asarray(given, dtype=np.float64)
        if vector.shape != (n_arms,) or np.any(vector < 0) or abs(vector.sum() - 1.0) > 1e-6:
            raise ValueError(
                f"weights {label!r} must give {n_arms} non-negative numbers summing to 1."
            )
        runs.append((label, vector))
    fuser_objs = [make_fuser(name, k=k) for name in fusers]
    t_users, t_items = np.asarray(test.users), np.asarray(test.items)  # type: ignore[attr-defined]
    users = np.unique(t_users)
    order = np.argsort(t_users, kind="stable")
    grouped = np.split(t_items[order], np.flatnonzero(np.diff(t_users[order])) + 1)
    first = arms[0]
    relevant = [
        np.setdiff1d(g, first.seen_items(int(u)))  # type: ignore[attr-defined]
        for u, g in zip(users, grouped, strict=True)
    ]
    cand_items, cand_scores = _candidates(arms, users, min(n_candidates, first.n_items), batch)  # type: ignore[attr-defined]
    catalog_ids = np.asarray(items.item_ids)  # type: ignore[attr-defined]
    genres = np.asarray(items.genres, dtype=np.float64)  # type: ignore[attr-defined]
    features = dict(zip(catalog_ids.tolist(), genres, strict=True))
    out = []
    for name, fuser in zip(fusers, fuser_objs, strict=True):
        for label, w in runs:
            rng = np.random.default_rng(seed)
            lists = [
                fuser.fuse(
                    cand_items[:, s : s + batch],
                    w,
                    scores=cand_scores[:, s : s + batch],
                    rng=rng,
                ).items
                for s in range(0, len(users), batch)
            ]
            rec = np.concatenate(lists)
            precision, f1 = precision_f1_at_k(rec, relevant)
            out.append(
                FusionScore(
                    fuser=name,
                    weights_label=label,
                    weights=tuple(float(x) for x in w),
                    precision=precision,
                    recall=recall_at_k(rec, relevant),
                    f1=f1,
                    ndcg=ndcg_at_k(rec, relevant),
                    coverage=catalogue_coverage(rec, len(catalog_ids)),
                    diversity=intra_list_diversity(rec, features) if genres.shape[1] else 0.0,
                    users=len(users),
                )
            )
    return out
