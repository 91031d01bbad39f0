"""Frozen copies of the draft engine as it was before the small-batch speed-up (test-only).

``tests/bandit/test_fusion_draft_identity.py`` checks that :func:`bandit.fusion.draft.draw_lists`
and :func:`bandit.fusion.team_draft.round_position_probabilities` still give bit-identical
results (the service replays stored decisions from their seed). Do not edit these to follow
the library: they are the reference.
"""

from __future__ import annotations

from itertools import permutations
from typing import Any

import numpy as np

from bandit.fusion.base import Candidates, FusedLists
from bandit.fusion.mmr import DraftMMR


def _participants(
    live: np.ndarray, remaining: np.ndarray | None, positive: np.ndarray
) -> np.ndarray:
    """Arms that may draw this slot: live ones (with an eligible item), with positive weight,
    and, for rounds, not yet drawn in this round (a new round starts when none is left).
    Arrays are arm-major, ``(A, N)``."""
    part = live & positive
    if remaining is None:
        return part
    in_round = part & remaining
    empty = ~in_round.any(axis=0)
    if empty.any():
        remaining[:, empty] = True
        in_round[:, empty] = part[:, empty]
    return in_round


def draw_lists(
    cand: Candidates,
    k: int,
    n_samples: int,
    rng: np.random.Generator,
    *,
    rounds: bool,
    max_per_category: int | None,
    estimate_sources: bool = True,
    mmr_weight: float | None = None,
) -> FusedLists:
    """Draw one list per request and estimate its propensities from ``n_samples`` replays.

    ``rounds=False`` is ``slot-mix``; ``rounds=True`` is ``team-draft``. An arm with positive
    weight but no eligible item left drops out and the draw is renormalised over the rest; if
    only arms of weight 0 have eligible items, the slot is drawn uniformly among them.
    With ``estimate_sources=False`` the source probabilities are left NaN for the caller to
    fill in exactly (the estimate is exact anyway for ``slot-mix`` without a cap).
    With ``mmr_weight`` (and the candidates' features) each arm's pick is its candidate of
    best marginal relevance (:class:`bandit.fusion.mmr.DraftMMR`); no arm then runs out,
    as every arm has at least ``k`` candidates and no cap applies.

    Work arrays are arm-major, ``(A, N)`` with ``N = B * (1 + n_samples)`` draws, so that
    sums over arms are sums of a few contiguous rows.
    """
    b, a, d = cand.shape
    unique_items = cand.unique()
    u_max = cand.n_ids
    s = n_samples
    n = b * (s + 1)
    # int32 indices: the work arrays stay small enough for the cache
    idx: np.dtype[Any] = np.dtype(np.int32 if n * max(u_max, a * d) < 2**31 - 1 else np.int64)
    req = np.tile(np.arange(b, dtype=idx), s + 1)  # draw -> request; draws < b shown
    draws = np.arange(n, dtype=idx)
    uid_flat = cand.uid.reshape(-1).astype(idx)
    arm_base = ((req * a + np.arange(a, dtype=idx)[:, None]) * d).ravel()  # list starts
    w = np.ascontiguousarray(cand.weights.T[:, req])
    positive = w > 0
    ptr = np.zeros(a * n, dtype=idx)
    cur = uid_flat[arm_base]  # (a * n,) each arm's best eligible item, as a unique id
    placed = np.zeros(n * u_max, dtype=bool)
    draw_u = draws * u_max
    remaining = np.ones((a, n), dtype=bool) if rounds else None
    cats = cand.categories
    cap = max_per_category if cats is not None else None
    if cap is not None:
        assert cats is not None
        n_cat = cats.n_categories
        cat_flat = cats.codes.reshape(-1).astype(idx)
        req_u = np.tile(req * u_max, a)  # (a * n,) start of each draw's request's codes
        count = np.zeros(n * n_cat, dtype=idx)
    exhaustible = cap is not None or d < k
    mmr = None
    if mmr_weight is not None:
        assert cand.features is not None and cap is None
        mmr = DraftMMR(cand.uid, cand.features, s + 1, mmr_weight)
        cur = mmr.picks().reshape(-1).astype(idx)
    # slot-mix without a cap draws every slot from the weights themselves
    static = not exhaustible and not rounds
    if static:
        p = w / w.sum(axis=0)
        cum = _cumulative(p)
        w_shown = p[:, :b]

    out_uid = np.empty((b, k), dtype=np.int64)
    out_src = np.empty((b, k), dtype=np.int64)
    src_prob = np.full((b, k), np.nan)
    item_prob = np.empty((b, k))
    shown = np.arange(b)
    for j in range(k):
        if not static:
            live = (ptr < d).reshape(a, n) if exhaustible else positive
            part = _participants(live, remaining, positive)
            pw = w * part
            total = pw.sum(axis=0)
            zero = total <= 0.0
            if zero.any():  # only arms of weight 0 can still place an item: draw uniformly
                fallback = _participants(live, remaining, np.ones_like(positive))
                if not fallback[:, zero].any(axis=0).all():
                    raise ValueError("categories: a list ran out of eligible items.")
                pw[:, zero] = fallback[:, zero]
                total = pw.sum(axis=0)
            p = pw / total
            cum = _cumulative(p)
        u = rng.random(n) * cum[-1]
        arm = (cum <= u).sum(axis=0)
        pick = arm * n + draws
        chosen = cur[pick]
        out_uid[:, j] = chosen[:b]
        out_src[:, j] = arm[:b]
        if s:
            hit = cur.reshape(a, n)[:, b:].reshape(a, s, b) == chosen[:b]
            if static:  # p is the weights in every replay: count hits, then weigh them
                item_prob[:, j] = (w_shown * hit.sum(axis=1)).sum(axis=0) / s
            else:
                p_rep = p[:, b:].reshape(a, s, b)
                item_prob[:, j] = (p_rep * hit).sum(axis=(0, 1)) / s
                if estimate_sources:
                    src_prob[:, j] = p_rep[arm[:b], :, shown].sum(axis=1) / s
        if j == k - 1:
            break
        if remaining is not None:
            remaining.ravel()[pick] = False
        placed[draw_u + chosen] = True
        if mmr is not None:
            mmr.place(chosen)
            cur = mmr.picks().reshape(-1).astype(idx)
            continue
        if cap is None:
            moving = np.flatnonzero(cur.reshape(a, n) == chosen)
        else:
            count[draws * n_cat + cat_flat[req_u[pick] + chosen]] += 1
            moving = np.flatnonzero(
                _blocked(cur, ptr < d, placed, count, cat_flat[req_u + cur], n, u_max, cap)
            )
        while moving.size:  # move each blocked arm down its list to its next eligible item
            ptr[moving] += 1
            if exhaustible:
                moving = moving[ptr[moving] < d]
            nxt = uid_flat[arm_base[moving] + ptr[moving]]
            cur[moving] = nxt
            draw = moving % n
            still = placed[draw * u_max + nxt]
            if cap is not None:
                still |= count[draw * n_cat + cat_flat[req_u[moving] + nxt]] >= cap
            moving = moving[still]
    if static:  # exact: the source of every slot is drawn from the weights
        src_prob = cand.weights[shown[:, None], out_src]

    items = unique_items[shown[:, None], out_uid]
    credit = np.zeros((b, k, a))
    np.put_along_axis(credit, out_src[:, :, None], 1.0, axis=2)
    return FusedLists(items, out_src, src_prob, item_prob, credit)


def _cumulative(p: np.ndarray) -> np.ndarray:
    """Cumulative sum over the (few) arms of an ``(A, N)`` array (np.cumsum on axis 0 is
    several times slower here)."""
    cum = p.copy()
    for i in range(1, p.shape[0]):
        cum[i] += cum[i - 1]
    return cum


def _blocked(
    cur: np.ndarray,
    live: np.ndarray,
    placed: np.ndarray,
    count: np.ndarray,
    cur_cat: np.ndarray,
    n: int,
    u_max: int,
    cap: int,
) -> np.ndarray:
    """Which arms' current items are no longer eligible (placed, or their category full)."""
    draw = np.arange(cur.size) % n
    n_cat = count.size // n
    full = count[draw * n_cat + cur_cat] >= cap
    return live & (placed[draw * u_max + cur] | full)


def round_position_probabilities(weights: np.ndarray) -> np.ndarray:
    """P(arm ``a`` picks ``q``-th in a round), ``(B, A, A)`` indexed ``[b, q, a]``.

    A round's order is a Plackett-Luce draw from the weights: the first arm with probability
    ``w_a``, the next in proportion to the weights of the arms left, and so on; arms of
    weight 0 come after every arm of positive weight. Summed over all ``A!`` orders.

    >>> round_position_probabilities(np.array([[0.5, 0.5]])).tolist()
    [[[0.5, 0.5], [0.5, 0.5]]]
    """
    b, a = weights.shape
    orders = np.array(list(permutations(range(a))), dtype=np.int64)  # (P, a)
    w = weights[:, orders]  # (b, P, a)
    left = np.cumsum(w[:, :, ::-1], axis=2)[:, :, ::-1]
    ratio = np.divide(w, left, out=np.ones_like(w), where=left > 0)
    prob = ratio.prod(axis=2)  # (b, P)
    out = np.empty((b, a, a))
    for q in range(a):
        out[:, q, :] = prob @ np.eye(a)[orders[:, q]]
    return out
