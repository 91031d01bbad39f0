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
    features: dict[int, np.ndarray] | None = None,
    mmr_weight: float | None = None,
) -> tuple[dict[tuple[int, int], float], dict[tuple[int, int], float]]:
    """Exact P(item x at slot j) and P(source a at slot j) of slot-mix (``rounds=False``) or
    team-draft (``rounds=True``) for one request, by enumerating every sequence of draws.
    With ``mmr_weight`` the drawn arm places :func:`mmr_pick` of its list."""
    item_p: dict[tuple[int, int], float] = defaultdict(float)
    src_p: dict[tuple[int, int], float] = defaultdict(float)
    n_arms = len(lists)

    def top(arm: int, placed: list[int]) -> int | None:
        if mmr_weight is not None:
            assert features is not None
            return mmr_pick(lists[arm], placed, features, mmr_weight)
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


def cosine(x: np.ndarray, y: np.ndarray) -> float:
    """Cosine similarity, 0 when either vector is zero."""
    nx, ny = float(np.linalg.norm(x)), float(np.linalg.norm(y))
    return 0.0 if nx == 0 or ny == 0 else float(x @ y) / (nx * ny)


def mmr_pick(
    ranked: list[int], placed: list[int], features: dict[int, np.ndarray], weight: float
) -> int:
    """The unplaced item of ``ranked`` with the best marginal relevance, relevance
    ``1 / log2(2 + rank)``; ties to the higher-ranked item."""
    best, best_value = -1, -np.inf
    for r, x in enumerate(ranked):
        if x in placed:
            continue
        sim = max((cosine(features[x], features[y]) for y in placed), default=0.0)
        value = (1 - weight) / np.log2(r + 2) - weight * sim
        if value > best_value + 1e-12:
            best, best_value = x, value
    return best


def mmr_reference(
    relevance: dict[int, float], k: int, features: dict[int, np.ndarray], weight: float
) -> list[int]:
    """Greedy MMR over ``relevance`` (item -> score in [0, 1]); ties to the smaller item."""
    placed: list[int] = []
    for _ in range(k):
        best, best_value = -1, -np.inf
        for x in sorted(relevance):
            if x in placed:
                continue
            sim = max((cosine(features[x], features[y]) for y in placed), default=0.0)
            value = (1 - weight) * relevance[x] - weight * sim
            if value > best_value + 1e-12:
                best, best_value = x, value
        placed.append(best)
    return placed
