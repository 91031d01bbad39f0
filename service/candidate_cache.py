"""Precomputed candidate lists: each recommender's ``top_k`` rows for every known user.

Scoring one user alone costs about a millisecond per recommender on the CPU (torch's fixed
per-call cost), most of a decision with items; scored in large batches the same rows cost a
few microseconds per user. So when the models are loaded (at start-up, and on a reload
before the new set is swapped in, :func:`with_caches`) every known user's ``top_k`` rows are
computed in batches of :data:`BUILD_BATCH` users and kept as compact arrays (users x depth:
item ids as int32, scores as float32), plus one row for the cold start that every unknown
unit shares.

Equal to the live answer by construction: a full-catalogue request (no ``candidates``) asks
the arm for ``top_k`` at its :func:`~service.recommenders.depth_bucket` depth; the cache
holds, for each depth bucket up to ``depth`` (16, 32, 64, ...), the arm's answer at that very
depth, sorted and filtered once by :func:`~service.recommenders.sort_row`, and a lookup ends
with the live path's own :func:`~service.recommenders.take_k` (``exclude``, ``k``, the same
error when too few items are left). The arms rank each user independently of the others in
a batch (what micro-batching relies on too, with the same caveat: the mf arm's matrix
product may round the last bits of a float32 score differently for another batch shape, see
:mod:`service.batching`). Keeping each depth rather than one deep row matters: an arm's
selector may break ties (e.g. the bert arm's title twins) differently at another depth.

Any other request (``candidates``, a depth above ``depth``, a known user beyond
``max_users``) is scored live, as before.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from service.errors import Invalid
from service.recommenders import (
    COLD_START_USER,
    ItemRequest,
    Ranked,
    Recommender,
    depth_bucket,
    sort_row,
    take_k,
    user_id,
)

BUILD_BATCH = 256  # users per top_k call while building (large batches: cheap per user)


@dataclass(frozen=True, slots=True)
class DepthRows:
    """The arm's ``top_k`` at one depth for every cached row, sorted (:func:`sort_row`)."""

    items: np.ndarray  # int32, (rows, depth), -1 past a row's length
    scores: np.ndarray  # float32, same shape
    lengths: np.ndarray  # int32, per row: real items


@dataclass(frozen=True, slots=True)
class CandidateCache:
    """The cached rows of one recommender: row i is user ``user_ids[i]``, the last row the
    cold start."""

    user_ids: np.ndarray  # sorted int64: the cached known users
    left_out: np.ndarray  # sorted int64: known users not cached (beyond max_users)
    depths: dict[int, DepthRows]

    @property
    def nbytes(self) -> int:
        """Memory held by the arrays."""
        total = self.user_ids.nbytes + self.left_out.nbytes
        for rows in self.depths.values():
            total += rows.items.nbytes + rows.scores.nbytes + rows.lengths.nbytes
        return int(total)

    def row(self, unit_id: str) -> int | None:
        """The row of ``unit_id``: its user's, the cold-start row for a unit the arm does
        not know, or None for a known user left out (beyond ``max_users``)."""
        user = user_id(unit_id)
        if user != COLD_START_USER:
            for ids, found in ((self.user_ids, True), (self.left_out, False)):
                pos = int(np.searchsorted(ids, user))
                if pos < len(ids) and ids[pos] == user:
                    return pos if found else None
        return len(self.user_ids)

    def lookup(self, rec: Recommender, unit_id: str, req: ItemRequest) -> Ranked | Invalid | None:
        """What :func:`~service.recommenders.rank_rows` gives for this request (a list or
        an :class:`Invalid`), or None when the cache does not hold its row."""
        if req.candidates is not None:
            return None
        rows = self.depths.get(depth_bucket(req, rec.n_items))
        r = self.row(unit_id)
        if rows is None or r is None:
            return None
        n = rows.lengths[r]
        return take_k(rec, unit_id, rows.items[r, :n], rows.scores[r, :n], req)


def cached_depths(n_items: int, depth: int) -> list[int]:
    """The depth buckets up to ``depth`` (what :func:`depth_bucket` can ask for)."""
    out: list[int] = []
    d = 16
    while True:
        bucket = min(n_items, d)
        if bucket > depth:
            return out
        if not out or bucket != out[-1]:
            out.append(bucket)
        if bucket == n_items:
            return out
        d *= 2


def build_cache(rec: Recommender, depth: int, max_users: int) -> CandidateCache:
    """The ``top_k`` rows of ``rec`` at every depth bucket up to ``depth``, for its first
    ``max_users`` known users (by id) and the cold start."""
    if depth < 1:
        raise ValueError(f"depth must be at least 1, got {depth}.")
    if max_users < 0:
        raise ValueError(f"max_users must be non-negative, got {max_users}.")
    known = np.asarray(rec.arm.user_ids_ if rec.arm.user_ids_ is not None else [], np.int64)
    cached, left_out = known[:max_users], known[max_users:]
    users = np.r_[cached, COLD_START_USER].astype(np.int64)
    depths: dict[int, DepthRows] = {}
    for d in cached_depths(rec.n_items, depth):
        items = np.full((len(users), d), -1, np.int32)
        scores = np.full((len(users), d), -np.inf, np.float32)
        lengths = np.zeros(len(users), np.int32)
        for start in range(0, len(users), BUILD_BATCH):
            top_ids, top_scores = rec.arm.top_k(users[start : start + BUILD_BATCH], d, True)
            pairs = zip(top_ids.numpy(), top_scores.float().numpy(), strict=True)
            for r, (ids, vals) in enumerate(pairs, start):
                ids, vals = sort_row(ids, vals)
                items[r, : len(ids)] = ids
                scores[r, : len(ids)] = vals
                lengths[r] = len(ids)
        depths[d] = DepthRows(items, scores, lengths)
    return CandidateCache(cached, left_out, depths)


def with_caches(
    models: Mapping[str, Recommender], depth: int, max_users: int
) -> dict[str, Recommender]:
    """``models`` with a :class:`CandidateCache` each (``depth`` 0: without)."""
    if depth == 0:
        return dict(models)
    return {
        name: dataclasses.replace(rec, cache=build_cache(rec, depth, max_users))
        for name, rec in models.items()
    }
