"""Deterministic score fusion: ``weighted-score`` and ``weighted-rrf``, with fractional credit.

Each arm contributes to every item it ranks; the fused score of an item is the sum of the
contributions, the list is the ``k`` items with the highest fused scores (ties: smaller item
id first), and each arm's credit for an item is its share of the item's fused score.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar

import numpy as np

from bandit.fusion.base import Candidates, FusedLists, Fuser
from bandit.fusion.diversity import capped_order
from bandit.validation import check_scalar


def top_k_unique(fused: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the ``k`` largest entries of each row, largest first, ties broken
    by the smaller column (columns are unique ids in increasing item id), in O(B * U).

    Entries set to ``-inf`` are padding and must not be needed to fill ``k``.
    """
    b, u = fused.shape
    kth = np.partition(fused, u - k, axis=1)[:, u - k : u - k + 1]
    above = fused > kth
    ties = fused == kth
    need = k - above.sum(axis=1, keepdims=True)
    chosen = above | (ties & (np.cumsum(ties, axis=1) <= need))
    cols = np.nonzero(chosen)[1].reshape(b, k)  # in column order
    order = np.argsort(-np.take_along_axis(fused, cols, axis=1), axis=1, kind="stable")
    return np.take_along_axis(cols, order, axis=1)


class ScoredFuser(Fuser):
    """Shared machinery: per-item sums of the arms' contributions, top ``k``, credit shares."""

    def _fuse(self, cand: Candidates, rng: np.random.Generator) -> FusedLists:
        b, a, _ = cand.shape
        u_max = cand.unique_items.shape[1]
        contrib = self._contributions(cand)  # (b, a, d)
        slot = (np.arange(b)[:, None, None] * u_max + cand.uid) * a + np.arange(a)[:, None]
        per_arm = np.bincount(
            slot.ravel(), weights=contrib.ravel(), minlength=b * u_max * a
        ).reshape(b, u_max, a)
        fused = per_arm.sum(axis=2)
        fused[cand.unique_items < 0] = -np.inf
        if self.max_per_category is None:
            cols = top_k_unique(fused, self.k)
        else:
            assert cand.categories is not None
            order = np.argsort(-fused, axis=1, kind="stable")
            codes = np.take_along_axis(cand.categories.codes, order, axis=1)
            keep = capped_order(codes, self.max_per_category)
            first = np.argsort(~keep, axis=1, kind="stable")[:, : self.k]
            cols = np.take_along_axis(order, first, axis=1)
        rows = np.arange(b)[:, None]
        items = cand.unique_items[rows, cols]
        share = per_arm[rows, cols]  # (b, k, a)
        credit = _normalise_credit(share, cand, rows, cols, slot)
        source = credit.argmax(axis=2)
        ones = np.ones((b, self.k))
        return FusedLists(items, source, ones, ones.copy(), credit)

    @abstractmethod
    def _contributions(self, cand: Candidates) -> np.ndarray:
        """Each arm's contribution to the fused score of each of its candidates, (B, A, D)."""


def _normalise_credit(
    share: np.ndarray,
    cand: Candidates,
    rows: np.ndarray,
    cols: np.ndarray,
    slot: np.ndarray,
) -> np.ndarray:
    """Turn contributions into shares summing to 1. An item whose fused score is 0 (ranked
    only where it contributes nothing) is credited in proportion to the weights of the arms
    that rank it, or evenly among them if those weights are 0 too."""
    total = share.sum(axis=2, keepdims=True)
    zero = total[..., 0] <= 0.0
    if zero.any():
        b, a, _ = cand.shape
        u_max = cand.unique_items.shape[1]
        ranked = np.bincount(slot.ravel(), minlength=b * u_max * a).reshape(b, u_max, a)
        present = ranked[rows, cols][zero].astype(np.float64)
        weighted = present * cand.weights[np.nonzero(zero)[0]]
        w_total = weighted.sum(axis=1, keepdims=True)
        share = share.copy()
        share[zero] = np.where(w_total > 0, weighted, present)
        total = share.sum(axis=2, keepdims=True)
    return share / total


class WeightedScore(ScoredFuser):
    """Weighted sum of the arms' scores, each min-max normalised per arm and request.

    The fused score of item ``x`` is ``sum_a w_a * s_a(x)`` with ``s_a`` arm ``a``'s score
    rescaled to [0, 1] over its candidates for the request (1 for every candidate if they
    all score the same; 0 for an item the arm does not rank). Needs ``scores``.

    Examples
    --------
    >>> import numpy as np
    >>> items = np.array([[[1, 2, 3]], [[3, 4, 5]]])
    >>> scores = np.array([[[3.0, 2.0, 1.0]], [[9.0, 5.0, 1.0]]])
    >>> out = WeightedScore(k=2).fuse(items, [0.5, 0.5], scores)
    >>> out.items.tolist(), out.credit[0, 0].tolist()  # 1 and 3 tie at 0.5: smaller id first
    ([[1, 3]], [1.0, 0.0])
    """

    name: ClassVar[str] = "weighted-score"
    needs_scores: ClassVar[bool] = True

    def _contributions(self, cand: Candidates) -> np.ndarray:
        assert cand.scores is not None
        s = cand.scores
        low = s.min(axis=2, keepdims=True)
        span = s.max(axis=2, keepdims=True) - low
        norm = np.divide(s - low, span, out=np.ones_like(s), where=span > 0)
        return norm * cand.weights[:, :, None]


class WeightedRRF(ScoredFuser):
    """Weighted reciprocal-rank fusion: item ``x`` scores ``sum_a w_a / (c + rank_a(x))``,
    ranks counted from 1, over the arms that rank ``x`` (Cormack et al. 2009, weighted).

    Examples
    --------
    >>> import numpy as np
    >>> items = np.array([[[1, 2, 3]], [[3, 4, 5]]])
    >>> out = WeightedRRF(k=2, c=60).fuse(items, [0.5, 0.5])
    >>> out.items.tolist()
    [[3, 1]]
    """

    name: ClassVar[str] = "weighted-rrf"

    def __init__(self, k: int, *, c: float = 60.0, max_per_category: int | None = None) -> None:
        super().__init__(k, max_per_category=max_per_category)
        self.c = float(check_scalar(c, "c", min_val=0.0))

    def _extra_params(self) -> dict[str, Any]:
        return {"c": self.c}

    def _contributions(self, cand: Candidates) -> np.ndarray:
        d = cand.shape[2]
        return cand.weights[:, :, None] / (self.c + np.arange(1, d + 1))
