"""Straightforward per-request references for the fusion tests (plain Python, exact)."""

from __future__ import annotations

from collections import defaultdict

import numpy as np


def exact_draft_marginals(
    lists: list[list[int]],
    weights: list[float],
    k: int,
    *,
    rounds: bool,
    categories: dict[int, int] | None = None,
    cap: int | None = None,
) -> tuple[dict[tuple[int, int], float], dict[tuple[int, int], float]]:
    """Exact P(item x at slot j) and P(source a at slot j) of slot-mix (``rounds=False``) or
    team-draft (``rounds=True``) for one request, by enumerating every sequence of draws."""
    item_p: dict[tuple[int, int], float] = defaultdict(float)
    src_p: dict[tuple[int, int], float] = defaultdict(float)
    n_arms = len(lists)

    def top(arm: int, placed: list[int]) -> int | None:
        used = defaultdict(int)
        for x in placed:
            if categories is not None:
                used[categories[x]] += 1
        for x in lists[arm]:
            if x in placed:
                continue
            if cap is not None and categories is not None and used[categories[x]] >= cap:
                continue
            return x
        return None

    def walk(placed: list[int], left: set[int], prob: float) -> None:
        j = len(placed)
        if j == k:
            return
        tops = {a: top(a, placed) for a in range(n_arms)}
        live = [a for a in range(n_arms) if tops[a] is not None and weights[a] > 0]
        if rounds:
            in_round = [a for a in live if a in left]
            if not in_round:
                left = set(range(n_arms))
                in_round = live
            live = in_round
        total = sum(weights[a] for a in live)
        for a in live:
            p = weights[a] / total
            x = tops[a]
            assert x is not None
            item_p[(x, j)] += prob * p
            src_p[(a, j)] += prob * p
            walk([*placed, x], left - {a}, prob * p)

    walk([], set(range(n_arms)), 1.0)
    return dict(item_p), dict(src_p)


def scored_reference(
    lists: list[list[int]],
    weights: list[float],
    k: int,
    *,
    scores: list[list[float]] | None = None,
    c: float = 60.0,
) -> tuple[list[int], list[list[float]]]:
    """weighted-score (``scores`` given) or weighted-rrf for one request: items and credit."""
    contrib: dict[int, list[float]] = defaultdict(lambda: [0.0] * len(lists))
    for a, row in enumerate(lists):
        if scores is not None:
            s = np.asarray(scores[a], dtype=float)
            span = s.max() - s.min()
            norm = (s - s.min()) / span if span > 0 else np.ones_like(s)
        for r, x in enumerate(row):
            value = norm[r] if scores is not None else 1.0 / (c + r + 1)
            contrib[x][a] += weights[a] * value
    ranked = sorted(contrib, key=lambda x: (-sum(contrib[x]), x))[:k]
    credit = []
    for x in ranked:
        total = sum(contrib[x])
        credit.append([v / total for v in contrib[x]])
    return ranked, credit
