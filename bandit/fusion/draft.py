r"""The draft engine behind ``slot-mix`` and ``team-draft``: lists drawn slot by slot, with
Rao-Blackwellised estimates of their propensities.

At each slot an arm is drawn and places its highest-ranked item that is still eligible (not
placed yet, and, under a category cap, of a category with room left; under MMR, the one of
best marginal relevance instead of the highest-ranked, see :mod:`bandit.fusion.mmr`).
``slot-mix`` draws the
arm from the weights at every slot; ``team-draft`` draws without replacement within a round
(every arm with positive weight picks once per round, in a weighted random order).

Propensities. Each request is drawn ``1 + n_samples`` times in one vectorised pass: the first
draw is the list shown, the other ``S = n_samples`` are independent replays of the same
process used only for estimation. In replay ``s`` the conditional probability that slot ``j``
shows item ``x`` is exact and cheap, :math:`q_s(x, j) = \sum_a P(\text{arm } a \text{ at } j
\mid H_s)\,[\text{top}_a(H_s) = x]`, given that replay's history :math:`H_s`. The estimate

.. math:: \hat p(x, j) = \frac{1}{S} \sum_{s=1}^{S} q_s(x, j)

is unbiased for the marginal :math:`p(x, j)` and, by the law of total variance, its variance
is at most that of a frequency count over ``S`` draws: standard error
:math:`\le \sqrt{p(1-p)/S} \le 0.5/\sqrt{S}`, and exact (zero error) wherever the conditional
probability does not depend on the history (slot 1, and every source probability of
``slot-mix`` without a category cap, which is exactly the weight). The same estimator gives
the marginal probability of each slot's source arm.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from bandit.fusion.base import Candidates, FusedLists, Fuser
from bandit.fusion.mmr import DraftMMR
from bandit.validation import check_scalar


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
    sums over arms are sums of a few contiguous rows. The loop over slots runs a fixed,
    small number of numpy operations per slot (it dominates the cost of a single request).
    """
    b, a, d = cand.shape
    unique_items = cand.unique()
    s = n_samples
    n = b * (s + 1)
    # int32 indices: the work arrays stay small enough for the cache
    idx: np.dtype[Any] = np.dtype(np.int32 if n * max(cand.n_ids, a * d) < 2**31 - 1 else np.int64)
    draws = np.arange(n, dtype=idx)
    req = draws % b  # draw -> request; draws < b shown
    w = np.ascontiguousarray(cand.weights.T[:, req])
    positive = w > 0
    remaining = np.ones((a, n), dtype=bool) if rounds else None
    cap = max_per_category if cand.categories is not None else None
    exhaustible = cap is not None or d < k
    picks: _Picks
    walked = None
    if mmr_weight is not None:
        assert cap is None
        picks = _MMRPicks(cand, s + 1, mmr_weight, idx)
    elif exhaustible or n > TOP_MAX_DRAWS:
        picks = walked = _WalkedPicks(cand, req, draws, idx, cap, exhaustible)
    else:
        picks = _TopPicks(cand, req, idx)
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
    defer = static and n <= TOP_MAX_DRAWS  # few draws: weigh slot-mix's hits after the loop
    picked = np.empty((k if defer else 0, a * n), dtype=idx)
    shown = np.arange(b)
    for j in range(k):
        if not static:
            live = walked.live().reshape(a, n) if walked is not None and exhaustible else positive
            p = _slot_probabilities(w, live, remaining, positive)
            cum = _cumulative(p)
        u = rng.random(n) * cum[-1]
        arm = (cum <= u).sum(axis=0)
        pick = arm * n + draws
        cur = picks.cur
        chosen = cur[pick]
        out_uid[:, j] = chosen[:b]
        out_src[:, j] = arm[:b]
        if s:
            if defer:
                picked[j] = cur
            else:
                hit = cur.reshape(a, n)[:, b:].reshape(a, s, b) == chosen[:b]
            if static and not defer:  # p is the weights in every replay: weigh the hit counts
                item_prob[:, j] = (w_shown * hit.sum(axis=1)).sum(axis=0) / s
            elif not static:
                p_rep = p[:, b:].reshape(a, s, b)
                item_prob[:, j] = (p_rep * hit).sum(axis=(0, 1)) / s
                if estimate_sources:
                    src_prob[:, j] = p_rep[arm[:b], :, shown].sum(axis=1) / s
        if j == k - 1:
            break
        if remaining is not None:
            remaining.ravel()[pick] = False
        picks.place(chosen, pick)
    if static:  # exact: the source of every slot is drawn from the weights
        src_prob = cand.weights[shown[:, None], out_src]
        if s and defer:  # each slot's replays whose arms' picks were its shown item, weighed
            hits = picked.reshape(k, a, n)[:, :, b:].reshape(k, a, s, b) == out_uid.T[:, None, None]
            item_prob = np.ascontiguousarray(((w_shown * hits.sum(axis=2)).sum(axis=1) / s).T)

    items = unique_items[shown[:, None], out_uid]
    credit = (out_src[:, :, None] == np.arange(a)).astype(np.float64)  # one-hot
    return FusedLists(items, out_src, src_prob, item_prob, credit)


def _slot_probabilities(
    w: np.ndarray, live: np.ndarray, remaining: np.ndarray | None, positive: np.ndarray
) -> np.ndarray:
    """Each arm's probability of drawing this slot, ``(A, N)``: the weights of the
    participants, renormalised (uniform over the live arms when those all weigh 0)."""
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
    return pw / total


class _Picks(ABC):
    """Each arm's pick in every draw, ``cur`` of shape ``(A * N,)`` (unique ids, arm-major):
    the item it places if drawn for the next slot."""

    cur: np.ndarray

    @abstractmethod
    def place(self, chosen: np.ndarray, pick: np.ndarray) -> None:
        """Record the items ``chosen`` (one per draw, placed by the arms at flat ``pick``)."""


class _TopPicks(_Picks):
    """Plain lists at least ``k`` deep: each arm's pick is its highest-ranked item not placed
    yet. The placed items are marked on each arm's list, so a pick is a first-unmarked
    search (no walk of variable length)."""

    def __init__(self, cand: Candidates, req: np.ndarray, idx: np.dtype[Any]) -> None:
        d = cand.shape[2]
        self.lists = cand.uid.astype(idx).transpose(1, 0, 2)[:, req]  # (A, N, D)
        self.flat = self.lists.reshape(-1)
        self.marked = np.zeros(self.lists.shape, dtype=bool)
        self.starts = np.arange(0, self.flat.size, d, dtype=np.int64)
        self.cur = self.flat[self.starts]

    def place(self, chosen: np.ndarray, pick: np.ndarray) -> None:
        self.marked |= self.lists == chosen[:, None]
        self.cur = self.flat[self.starts + self.marked.argmin(axis=2).reshape(-1)]


class _MMRPicks(_Picks):
    """Each arm's candidate of best marginal relevance (:class:`DraftMMR`)."""

    def __init__(
        self, cand: Candidates, n_draws: int, mmr_weight: float, idx: np.dtype[Any]
    ) -> None:
        assert cand.features is not None
        self.idx = idx
        self.mmr = DraftMMR(cand.uid, cand.features, n_draws, mmr_weight)
        self.cur = self.mmr.picks().reshape(-1).astype(idx)

    def place(self, chosen: np.ndarray, pick: np.ndarray) -> None:
        self.mmr.place(chosen)
        self.cur = self.mmr.picks().reshape(-1).astype(self.idx)


class _WalkedPicks(_Picks):
    """Each arm walks down its list past placed items and items of full categories: lists
    that may run out (shorter than ``k``, or a category cap), and plain lists of many draws
    (where a walk touches only the few arms whose pick was placed)."""

    def __init__(
        self,
        cand: Candidates,
        req: np.ndarray,
        draws: np.ndarray,
        idx: np.dtype[Any],
        cap: int | None,
        exhaustible: bool,
    ) -> None:
        _, a, d = cand.shape
        self.exhaustible = exhaustible
        n, u_max = draws.size, cand.n_ids
        self.n, self.d, self.u_max, self.cap = n, d, u_max, cap
        self.uid_flat = cand.uid.reshape(-1).astype(idx)
        self.arm_base = ((req * a + np.arange(a, dtype=idx)[:, None]) * d).ravel()  # starts
        self.ptr = np.zeros(a * n, dtype=idx)
        self.cur = self.uid_flat[self.arm_base]
        self.placed = np.zeros(n * u_max, dtype=bool)
        self.draws = draws
        self.draw_u = draws * u_max
        cats = cand.categories
        if cap is not None:
            assert cats is not None
            self.n_cat = cats.n_categories
            self.cat_flat = cats.codes.reshape(-1).astype(idx)
            self.req_u = np.tile(req * u_max, a)  # (a * n,) start of each draw's request's codes
            self.count = np.zeros(n * self.n_cat, dtype=idx)

    def live(self) -> np.ndarray:
        """Which arms still have an eligible item, ``(A * N,)``."""
        return self.ptr < self.d

    def place(self, chosen: np.ndarray, pick: np.ndarray) -> None:
        n, d, u_max, cap = self.n, self.d, self.u_max, self.cap
        cur, ptr, placed = self.cur, self.ptr, self.placed
        placed[self.draw_u + chosen] = True
        if cap is None:
            moving = np.flatnonzero(cur.reshape(-1, n) == chosen)
        else:
            cat_flat, req_u, count = self.cat_flat, self.req_u, self.count
            count[self.draws * self.n_cat + cat_flat[req_u[pick] + chosen]] += 1
            moving = np.flatnonzero(
                _blocked(cur, ptr < d, placed, count, cat_flat[req_u + cur], n, u_max, cap)
            )
        while moving.size:  # move each blocked arm down its list to its next eligible item
            ptr[moving] += 1
            if self.exhaustible:
                moving = moving[ptr[moving] < d]
            nxt = self.uid_flat[self.arm_base[moving] + ptr[moving]]
            cur[moving] = nxt
            draw = moving % n
            still = placed[draw * u_max + nxt]
            if cap is not None:
                cat = self.cat_flat[self.req_u[moving] + nxt]
                still |= self.count[draw * self.n_cat + cat] >= cap
            moving = moving[still]


#: Draws up to which plain lists mark placed items on every arm's whole list (a fixed
#: number of operations per slot); more draws walk only the arms whose pick was placed.
TOP_MAX_DRAWS = 1024
#: Draws up to which one ``np.cumsum`` call beats adding the arms' rows one by one.
CUMSUM_MAX_DRAWS = 256


def _cumulative(p: np.ndarray) -> np.ndarray:
    """Cumulative sum over the (few) arms of an ``(A, N)`` array. Both ways add the rows in
    the same order (the same sums, bit for bit); on many draws np.cumsum on axis 0 is several
    times slower than a loop over the rows, on few its single call is cheaper."""
    if p.shape[1] <= CUMSUM_MAX_DRAWS:
        return np.cumsum(p, axis=0)
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


class DrawnFuser(Fuser):
    """Base of the fusers that draw each slot's source (slot-mix, team-draft).

    Both estimate what has no closed form from ``n_samples`` replays of the same draw, and
    read each arm's list only ``k`` deep unless a diversity constraint may skip items.
    """

    def __init__(
        self,
        k: int,
        *,
        n_samples: int = 32,
        max_per_category: int | None = None,
        mmr_weight: float | None = None,
    ) -> None:
        super().__init__(k, max_per_category=max_per_category, mmr_weight=mmr_weight)
        self.n_samples = int(check_scalar(n_samples, "n_samples", kind=int, min_val=1))

    def _extra_params(self) -> dict[str, Any]:
        return {"n_samples": self.n_samples}

    def _depth(self) -> int | None:
        plain = self.max_per_category is None and self.mmr_weight is None
        return self.k if plain else None
