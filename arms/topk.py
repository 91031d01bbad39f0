"""Blocked top-k selection: the users x items score matrix is never materialised.

Two selectors share one contract: given a block of users, return each user's ``k``
best item indices and scores, with excluded (already seen) items never returned.

* :func:`tiled_topk` works for any scorer: it asks for one (users x item-chunk) tile at
  a time and keeps a running top-k (``torch.topk`` per tile, then a merge).
* :func:`dot_topk` is the fast path for arms whose score is a dot product
  ``U @ V.T``. ``torch.topk`` over every tile costs as much as the matmul itself, so
  each tile is instead reduced to *group maxima*: items ``c*g .. c*g + g - 1`` form
  group ``c``, and ``amax`` over each group's ``g`` rows of the item-major tile (a
  vectorised elementwise max) leaves one value per group and user. The ``k`` groups
  with the largest maxima contain ``k`` best items (each group maximum is a score of
  a distinct item, so the k-th largest group maximum is at most the k-th best score,
  and a group holding one of the k best items has a maximum at least that score),
  so a top-k over the group maxima, followed by an exact re-score of the ``k * g``
  candidate items, gives the exact top-k. The same argument, applied once more to
  spans of consecutive group maxima, keeps that top-k over the group maxima cheap.

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


def _top_group_rows(gmax: torch.Tensor, k: int, span: int) -> torch.Tensor:
    """Per column of ``gmax`` (rows x users), the rows of its ``k`` largest values.

    ``torch.topk`` over every row is the slow part on a CPU, so it runs in two levels:
    ``amax`` over consecutive spans of ``span`` rows, ``topk`` over those span maxima, and
    ``topk`` over the ``k * span`` rows of the chosen spans. The ``k`` largest values lie
    in the ``k`` spans with the largest maxima (the argument of the module docstring).
    ``gmax.shape[0]`` must be a multiple of ``span``. Returns int64 of shape (users, k).
    """
    n_rows, n_users = gmax.shape
    by_user = gmax.T
    if span <= 1 or n_rows // span < k:
        return by_user.topk(k, dim=1, sorted=False).indices
    spans = gmax.view(n_rows // span, span, n_users).amax(dim=1).T
    _, top_spans = spans.topk(k, dim=1, sorted=False)
    rows = (top_spans.unsqueeze(-1) * span + torch.arange(span, device=gmax.device)).flatten(1)
    _, pos = by_user.gather(1, rows).topk(k, dim=1, sorted=False)
    return rows.gather(1, pos)


def dot_topk(
    user_vecs: torch.Tensor,
    item_vecs: torch.Tensor,
    k: int,
    item_block: int = 4096,
    groups: int = 16,
    excluded: ExcludedPairs | None = None,
    span: int = 32,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact top-k of ``user_vecs @ item_vecs.T`` by group maxima (see the module docstring).

    Each tile is computed item-major, ``item_vecs[tile] @ user_vecs.T`` (items x users),
    into one reused buffer: on the CPU we measured (2-core AMD EPYC, MKL) that product ran
    5-30% faster than the
    user-major one, and a group's maximum is an elementwise ``amax`` of its rows.

    Parameters
    ----------
    user_vecs : Tensor, shape (n_users, d)
        One block of users (a few hundred rows keeps a tile in cache).
    item_vecs : Tensor, shape (n_items, d)
        Same dtype and device as ``user_vecs``.
    k : int
        Must satisfy ``1 <= k <= n_items``.
    item_block : int
        Items per tile; rounded down to a multiple of ``groups``.
    groups : int
        Consecutive items per group: the candidates re-scored number ``k * groups``.
    excluded : ExcludedPairs, optional
    span : int
        Group maxima per span in the two-level selection of :func:`_top_group_rows`.

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
    n_groups = -(-n_items // groups)  # group c holds items c * groups .. c * groups + groups - 1
    span = max(1, min(span, n_groups // max(k, 1)))
    dev, dtype = user_vecs.device, user_vecs.dtype
    users_t = user_vecs.T
    buf = torch.empty((width, n_users), dtype=dtype, device=dev)
    # group maxima, item-major; rows past the last group are -inf padding up to a
    # multiple of ``span``
    gmax = torch.empty((-(-n_groups // span) * span, n_users), dtype=dtype, device=dev)
    gmax[n_groups:] = float("-inf")
    for start in range(0, n_items, width):
        stop = min(start + width, n_items)
        n_rows = -(-(stop - start) // groups) * groups
        if stop - start < n_rows:  # the last group is partial: pad it with -inf
            buf[stop - start : n_rows] = float("-inf")
        torch.mm(item_vecs[start:stop], users_t, out=buf[: stop - start])
        rows, cols = excluded.in_range(start, stop)
        if len(rows):
            buf[torch.from_numpy(cols).to(dev), torch.from_numpy(rows).to(dev)] = float("-inf")
        g0 = start // groups
        tile = buf[:n_rows].view(n_rows // groups, groups, n_users)
        torch.amax(tile, dim=1, out=gmax[g0 : g0 + n_rows // groups])
    top = _top_group_rows(gmax, min(k, gmax.shape[0]), span)  # (n_users, k)
    cand = (top.unsqueeze(-1) * groups + torch.arange(groups, device=dev)).flatten(1)
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
