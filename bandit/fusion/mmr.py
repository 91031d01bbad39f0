r"""The other diversity constraint: maximal marginal relevance (MMR, Carbonell & Goldstein 1998).

Each item that enters a list is the one with the best marginal relevance

.. math:: \text{mmr}(x) = (1 - \theta)\,\text{rel}(x) - \theta \max_{y \in L} \cos(f_x, f_y),

where ``L`` is the items already placed, ``f`` the items' feature vectors (e.g. genre flags)
and ``theta`` the fuser's ``mmr_weight`` in [0, 1) (0: no diversity, the plain fuser).
What ``rel`` is depends on the fuser:

* ``weighted-score`` and ``weighted-rrf``: the item's fused score divided by the largest
  fused score of the request, in [0, 1]; the list is built greedily over every item an arm
  ranks;
* ``slot-mix`` and ``team-draft``: the drawn arm places, among its own unplaced candidates,
  the one of best marginal relevance with ``rel = 1 / log2(2 + rank)`` (the DCG discount of
  its rank in that arm's list, 1 for the arm's top item). The draw of the arms is unchanged.

Features arrive as an array indexed by item id (one row per item) or a mapping item ->
vector, and are encoded once per micro-batch as unit vectors of each request's distinct
items (an all-zero vector is orthogonal to every item).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np


def encode_features(
    features: np.ndarray | Mapping[Any, Any], unique_items: np.ndarray
) -> np.ndarray:
    """Unit feature vectors of each request's distinct items, ``(B, U, F)`` float64.

    ``unique_items`` is ``(B, U)`` (padding -1 gets a zero vector). Raises ``ValueError``
    naming ``features`` when an item has no vector, vectors differ in length or are not
    finite numbers.
    """
    valid = unique_items >= 0
    wanted = unique_items[valid]
    if isinstance(features, Mapping):
        rows = []
        for item in wanted.tolist():
            try:
                rows.append(np.asarray(features[item], dtype=np.float64))
            except KeyError:
                raise ValueError(f"features has no vector for item {item}.") from None
            except (TypeError, ValueError):
                raise ValueError(f"features of item {item} must be a vector of numbers.") from None
        if len({r.shape for r in rows}) > 1 or (rows and rows[0].ndim != 1):
            raise ValueError("features must give every item a vector of the same length.")
        table = np.stack(rows) if rows else np.zeros((0, 1))
    else:
        try:
            arr = np.asarray(features, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError("features must be an (n_items, F) array of numbers.") from None
        if arr.ndim != 2:
            raise ValueError(f"features must have shape (n_items, F), got {arr.ndim} dimension(s).")
        if wanted.size and int(wanted.max()) >= arr.shape[0]:
            raise ValueError(
                f"features has no row for item {int(wanted.max())} (it has {arr.shape[0]})."
            )
        table = arr[wanted]
    if not np.all(np.isfinite(table)):
        raise ValueError("features must be finite: found NaN or infinity.")
    norms = np.linalg.norm(table, axis=1, keepdims=True)
    table = table / np.where(norms > 0, norms, 1.0)
    out = np.zeros((*unique_items.shape, table.shape[1]))
    out[valid] = table
    return out


def mmr_select(relevance: np.ndarray, features: np.ndarray, k: int, weight: float) -> np.ndarray:
    """Greedy MMR: the ``k`` columns of each row of ``relevance`` ``(B, U)``, in order.

    ``relevance`` is -inf where a column may not be chosen (each row has at least ``k``
    finite entries); ``features`` is ``(B, U, F)`` unit vectors. Ties go to the smaller
    column.

    >>> rel = np.array([[1.0, 0.9, 0.5]])
    >>> f = np.array([[[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]])  # 0 and 1 are alike
    >>> mmr_select(rel, f, 2, 0.0).tolist(), mmr_select(rel, f, 2, 0.5).tolist()
    ([[0, 1]], [[0, 2]])
    """
    b = relevance.shape[0]
    rows = np.arange(b)
    value = (1.0 - weight) * relevance
    max_sim = np.zeros_like(relevance)
    out = np.empty((b, k), dtype=np.int64)
    for j in range(k):
        col = np.argmax(value - weight * max_sim, axis=1)
        out[:, j] = col
        value[rows, col] = -np.inf
        if j < k - 1:
            sim = np.einsum("buf,bf->bu", features, features[rows, col])
            np.maximum(max_sim, sim, out=max_sim)
    return out


class DraftMMR:
    """Each arm's best item by marginal relevance, per draw of the draft engine.

    The draft engine draws ``R`` replays of ``B`` requests (draw ``s * B + b`` replays
    request ``b``); this keeps, per draw, the largest similarity of every distinct item of
    the request to the items placed so far, and answers each arm's pick.

    Parameters
    ----------
    uid : (B, A, D) int
        Unique id of each arm's candidates (see :class:`bandit.fusion.base.Candidates`).
    features : (B, U, F)
        Unit feature vectors of the distinct items (:func:`encode_features`).
    replays
        ``R``, the number of draws per request.
    weight
        ``theta`` of the module docstring.
    """

    def __init__(self, uid: np.ndarray, features: np.ndarray, replays: int, weight: float) -> None:
        b, _, d = uid.shape
        self.uid = uid
        self.features = features
        self.weight = weight
        self.replays = replays
        u = features.shape[1]
        # theta * the largest similarity to the placed items; +inf once an item is placed
        self.penalty = np.zeros((replays, b, u))
        self.rel = (1.0 - weight) / np.log2(np.arange(d) + 2.0)
        # flat index of each (draw, arm, rank) into a (draws, U) array
        draw = np.arange(replays * b).reshape(replays, b)
        self._cells = draw[:, :, None, None] * u + uid[None]  # (R, B, A, D)

    def picks(self) -> np.ndarray:
        """Each arm's pick per draw, ``(A, R * B)`` unique ids, among its unplaced candidates
        (every arm has at least ``k`` candidates, so one is always left)."""
        value = self.rel - self.penalty.reshape(-1)[self._cells]
        best = np.argmax(value, axis=3)  # (R, B, A)
        pick = np.take_along_axis(np.broadcast_to(self.uid, self._cells.shape), best[..., None], 3)
        return pick[..., 0].transpose(2, 0, 1).reshape(self.uid.shape[1], -1)

    def place(self, chosen: np.ndarray) -> None:
        """Add the chosen unique id of every draw (``(R * B,)``) to its list."""
        b = self.uid.shape[0]
        rows = np.arange(b)
        f = self.features[rows, chosen.reshape(self.replays, b)]  # (R, B, F)
        sim = np.matmul(self.features, f.transpose(1, 2, 0))  # (B, U, R)
        sim *= self.weight
        np.maximum(self.penalty, sim.transpose(2, 0, 1), out=self.penalty)
        self.penalty.reshape(-1)[np.arange(chosen.size) * self.penalty.shape[2] + chosen] = np.inf
