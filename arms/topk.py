"""Blocked top-k selection: the users x items score matrix is never materialised.

Two selectors share one contract: given a block of users, return each user's ``k``
best item indices and scores, with excluded (already seen) items never returned.

* :func:`tiled_topk` works for any scorer: it asks for one (users x item-chunk) tile at
  a time and keeps a running top-k (``torch.topk`` per tile, then a merge).
* :func:`dot_topk` is the fast path for arms whose score is a dot product
  ``U @ V.T``. ``torch.topk`` over every tile costs as much as the matmul itself, so
  each tile is instead reduced to *group maxima*: the tile's ``w`` columns are split
  into ``g`` interleaved slices of width ``w / g`` and ``amax`` over the slices (a
  vectorised elementwise max) leaves one value per group. The ``k`` groups with the
  largest maxima contain the ``k`` best items (each of the k best items lies in a
  group whose maximum is at least the k-th best score, and at most k groups can have
  such a maximum), so one ``topk`` over the group maxima of all tiles, followed by an
  exact re-score of the ``k * g`` candidate items, gives the exact top-k.

Slots that cannot be filled (fewer than ``k`` items left after exclusion) hold
index ``-1`` and score ``-inf``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["ExcludedPairs", "dot_topk", "tiled_topk"]


@dataclass(frozen=True, slots=True)
class ExcludedPairs:
    """(row, column) pairs to exclude for one block of users, sorted by column.

    Attributes
    ----------
    rows : numpy.ndarray of int64, shape (nnz,)
        Row in the user block.
    cols : numpy.ndarray of int64, shape (nnz,)
        Item index, ascending.
    """

    rows: np.ndarray
    cols: np.ndarray

    @classmethod
    def empty(cls) -> ExcludedPairs:
        """No exclusions."""
        return cls(np.zeros(0, np.int64), np.zeros(0, np.int64))

    def in_range(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Pairs whose column lies in ``[start, stop)``, columns made relative to ``start``."""
        lo, hi = np.searchsorted(self.cols, [start, stop])
        return self.rows[lo:hi], self.cols[lo:hi] - start

    def contains(self, rows: np.ndarray, cols: np.ndarray, n_cols: int) -> np.ndarray:
        """Boolean mask, same shape as ``rows``: is each (row, col) excluded?"""
        if len(self.rows) == 0:
            return np.zeros(np.shape(rows), dtype=bool)
        keys = np.sort(self.rows * n_cols + self.cols)
        query = np.asarray(rows, np.int64) * n_cols + np.asarray(cols, np.int64)
        pos = np.clip(np.searchsorted(keys, query), 0, len(keys) - 1)
        return keys[pos] == query


def _mask_tile(
    tile: torch.Tensor, excluded: ExcludedPairs, start: int, stop: int, owned: bool
) -> torch.Tensor:
    """``tile`` with excluded pairs set to ``-inf`` (copied first unless it owns its memory)."""
    rows, cols = excluded.in_range(start, stop)
    if len(rows):
        if not owned:
            tile = tile.clone()
        r = torch.from_numpy(rows).to(tile.device)
        c = torch.from_numpy(cols).to(tile.device)
        tile[r, c] = float("-inf")
    return tile


def _finish(values: torch.Tensor, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    values = values.float()
    indices = torch.where(torch.isneginf(values), torch.full_like(indices, -1), indices)
    return indices, values


def tiled_topk(
    score_tile: Callable[[int, int], torch.Tensor],
    n_rows: int,
    n_items: int,
    k: int,
    item_block: int,
    excluded: ExcludedPairs | None = None,
    device: torch.device | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k over item tiles for any scorer, keeping a running top-k.

    Parameters
    ----------
    score_tile : callable (start, stop) -> Tensor of shape (n_rows, stop - start)
    n_rows, n_items, k, item_block : int
    excluded : ExcludedPairs, optional
    device : torch.device, optional
        Where the running top-k lives (the tiles' device).

    Returns
    -------
    indices : Tensor of int64, shape (n_rows, k)
    values : Tensor of float32, shape (n_rows, k)
    """
    excluded = excluded or ExcludedPairs.empty()
    best_v = torch.full((n_rows, k), float("-inf"), device=device)
    best_i = torch.full((n_rows, k), -1, dtype=torch.int64, device=device)
    for start in range(0, n_items, item_block):
        stop = min(start + item_block, n_items)
        tile = _mask_tile(score_tile(start, stop).float(), excluded, start, stop, owned=False)
        v, i = tile.topk(min(k, stop - start), dim=1)
        all_v = torch.cat([best_v, v], dim=1)
        all_i = torch.cat([best_i, i + start], dim=1)
        best_v, sel = all_v.topk(k, dim=1)
        best_i = all_i.gather(1, sel)
    return _finish(best_v, best_i)


def dot_topk(
    user_vecs: torch.Tensor,
    item_vecs: torch.Tensor,
    k: int,
    item_block: int = 4096,
    groups: int = 16,
    excluded: ExcludedPairs | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact top-k of ``user_vecs @ item_vecs.T`` by group maxima (see the module docstring).

    Parameters
    ----------
    user_vecs : Tensor, shape (n_users, d)
        One block of users (a few hundred rows keeps a tile in cache).
    item_vecs : Tensor, shape (n_items, d)
        Same dtype and device as ``user_vecs``.
    k : int
        Must satisfy ``1 <= k <= n_items``.
    item_block : int
        Columns per tile; rounded down to a multiple of ``groups``.
    groups : int
        Interleaved slices per tile: the candidates re-scored number ``k * groups``.
    excluded : ExcludedPairs, optional

    Returns
    -------
    indices : Tensor of int64, shape (n_users, k)
    values : Tensor of float32, shape (n_users, k)

    Examples
    --------
    >>> u = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    >>> v = torch.tensor([[3.0, 0.0], [1.0, 2.0], [0.0, 5.0]])
    >>> dot_topk(u, v, 2)[0].tolist()
    [[0, 1], [2, 1]]
    """
    n_users, n_items = user_vecs.shape[0], item_vecs.shape[0]
    excluded = excluded or ExcludedPairs.empty()
    groups = max(1, min(groups, n_items // max(k, 1)))
    width = max(groups, (item_block // groups) * groups)
    gw = width // groups
    n_tiles = -(-n_items // width)
    dev, dtype = user_vecs.device, user_vecs.dtype
    # one contiguous (n_users, gw) slab of group maxima per tile
    gmax = torch.empty((n_tiles, n_users, gw), dtype=dtype, device=dev)
    for t in range(n_tiles):
        start = t * width
        stop = min(start + width, n_items)
        tile = _mask_tile(user_vecs @ item_vecs[start:stop].T, excluded, start, stop, owned=True)
        if stop - start < width:  # the last, partial tile: pad with -inf to a full tile
            padded = torch.full((n_users, width), float("-inf"), dtype=dtype, device=dev)
            padded[:, : stop - start] = tile
            tile = padded
        gmax[t] = tile.view(n_users, groups, gw).amax(dim=1)  # (amax's out= path is slower)
    flat = gmax.permute(1, 0, 2).reshape(n_users, n_tiles * gw)
    # group g of tile t holds items t*width + c + m*gw, m = 0..groups-1 (c = g - t*gw)
    _, top_groups = flat.topk(min(k, flat.shape[1]), dim=1)
    tile_of = torch.div(top_groups, gw, rounding_mode="floor")
    col = top_groups - tile_of * gw
    offsets = torch.arange(groups, device=user_vecs.device) * gw
    cand = (tile_of * width + col).unsqueeze(-1) + offsets  # (n_users, k, groups)
    cand = cand.reshape(n_users, -1)
    valid = cand < n_items
    cand = torch.where(valid, cand, torch.zeros_like(cand))
    scores = torch.bmm(item_vecs[cand], user_vecs.unsqueeze(-1)).squeeze(-1)
    invalid = ~valid
    if len(excluded.rows):
        rows = torch.arange(n_users).unsqueeze(1).expand_as(cand).numpy()
        hit = excluded.contains(rows, cand.cpu().numpy(), n_items)
        invalid |= torch.from_numpy(hit).to(cand.device)
    scores = scores.masked_fill(invalid, float("-inf"))
    v, sel = scores.topk(k, dim=1)
    return _finish(v, cand.gather(1, sel))
