"""The diversity constraint every fuser honours: at most ``m`` items of one category per list.

Categories arrive as an array indexed by item id or as a mapping item -> category; they are
encoded once per micro-batch as small integer codes of each request's distinct items.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class CategoryCodes:
    """Category code ``0..n_categories-1`` of each distinct item of each request.

    ``codes`` is ``(B, U)`` aligned with :attr:`Candidates.unique_items`; padding is -1.
    """

    codes: np.ndarray
    n_categories: int

    def check_fillable(self, k: int, max_per_category: int) -> None:
        """Raise ``ValueError`` unless every request can fill ``k`` slots under the cap."""
        b = self.codes.shape[0]
        valid = self.codes >= 0
        flat = (np.arange(b)[:, None] * self.n_categories + self.codes)[valid]
        counts = np.bincount(flat, minlength=b * self.n_categories).reshape(b, -1)
        room = np.minimum(counts, max_per_category).sum(axis=1)
        if np.any(room < k):
            row = int(np.argmax(room < k))
            raise ValueError(
                f"categories: request {row} cannot fill {k} slots with at most "
                f"{max_per_category} items per category (only {int(room[row])} fit)."
            )


def _lookup_array(table: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    if table.ndim != 1:
        raise ValueError("categories must be a one-dimensional array indexed by item id.")
    if wanted.size and int(wanted.max()) >= table.size:
        raise ValueError(
            f"categories has no entry for item {int(wanted.max())} (it has {table.size})."
        )
    return table[wanted]


def _lookup_mapping(table: Mapping[Any, Any], wanted: np.ndarray) -> np.ndarray:
    out = []
    for item in wanted.tolist():
        try:
            out.append(table[item])
        except KeyError:
            raise ValueError(f"categories has no entry for item {item}.") from None
    return np.asarray(out)


def encode_categories(
    categories: np.ndarray | Mapping[Any, Any],
    unique_items: np.ndarray,
    n_unique: np.ndarray,
) -> CategoryCodes:
    """Encode the categories of each request's distinct items as small integer codes."""
    valid = unique_items >= 0
    wanted = unique_items[valid]
    if isinstance(categories, Mapping):
        values = _lookup_mapping(categories, wanted)
    else:
        values = _lookup_array(np.asarray(categories), wanted)
    try:
        labels, inverse = np.unique(values, return_inverse=True)
    except TypeError:
        raise ValueError("categories must be comparable labels (numbers or strings).") from None
    codes = np.full(unique_items.shape, -1, dtype=np.int64)
    codes[valid] = inverse.reshape(-1)
    return CategoryCodes(codes, max(int(labels.size), 1))


def capped_order(order_codes: np.ndarray, max_per_category: int) -> np.ndarray:
    """Mask of the entries kept when walking each row in order under the category cap.

    ``order_codes`` is ``(B, M)``: the category code of each candidate in preference order
    (-1 for padding, never kept). An entry is kept iff fewer than ``max_per_category``
    earlier entries of its row share its category; rejecting an item never changes the
    count of another category, so the greedy walk needs no loop.
    """
    b, m = order_codes.shape
    g = int(order_codes.max()) + 2
    key = (np.arange(b)[:, None] * g + order_codes + 1).ravel()
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    start = np.r_[True, sorted_key[1:] != sorted_key[:-1]]
    run_start = np.maximum.accumulate(np.where(start, np.arange(key.size), 0))
    occurrence = np.empty(key.size, dtype=np.int64)
    occurrence[order] = np.arange(key.size) - run_start
    return (occurrence.reshape(b, m) < max_per_category) & (order_codes >= 0)
