"""The blocked selectors return exactly what a full sort would."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from arms.topk import ExcludedPairs, dot_topk, tiled_topk


def brute(scores: torch.Tensor, k: int, mask: torch.Tensor) -> torch.Tensor:
    return scores.masked_fill(mask, float("-inf")).topk(k, dim=1).values


@settings(max_examples=100, deadline=None)
@given(
    n_users=st.integers(1, 9),
    n_items=st.integers(1, 70),
    d=st.integers(1, 6),
    k_frac=st.floats(0.0, 1.0),
    block=st.integers(1, 40),
    groups=st.integers(1, 9),
    span=st.integers(1, 8),
    seed=st.integers(0, 2**16),
    exclude=st.floats(0.0, 0.9),
)
def test_selectors_agree_with_full_sort(
    n_users: int,
    n_items: int,
    d: int,
    k_frac: float,
    block: int,
    groups: int,
    span: int,
    seed: int,
    exclude: float,
) -> None:
    gen = torch.Generator().manual_seed(seed)
    u, v = torch.randn(n_users, d, generator=gen), torch.randn(n_items, d, generator=gen)
    k = max(1, round(k_frac * n_items))
    mask = torch.rand(n_users, n_items, generator=gen) < exclude
    rows, cols = np.nonzero(mask.numpy())
    order = np.argsort(cols, kind="stable")
    excluded = ExcludedPairs(rows[order].astype(np.int64), cols[order].astype(np.int64))
    scores = u @ v.T
    expected = brute(scores, k, mask)
    for ids, vals in (
        dot_topk(u, v, k, item_block=block, groups=groups, excluded=excluded, span=span),
        tiled_topk(lambda a, b: scores[:, a:b], n_users, n_items, k, block, excluded),
    ):
        assert ids.shape == vals.shape == (n_users, k)
        torch.testing.assert_close(vals, expected, rtol=1e-5, atol=1e-5)
        empty = ids < 0
        assert torch.equal(empty, torch.isneginf(vals))
        picked = scores.gather(1, ids.clamp(min=0))
        torch.testing.assert_close(picked[~empty], vals[~empty], rtol=1e-5, atol=1e-5)
        assert not mask.gather(1, ids.clamp(min=0))[~empty].any()
        filled = ids.masked_fill(empty, -1)
        for row in filled:
            real = row[row >= 0]
            assert len(real.unique()) == len(real), "no item twice"


def test_dot_topk_two_level_selection_at_scale() -> None:
    """Default span and groups over a catalogue of many tiles, with exclusions and ties."""
    gen = torch.Generator().manual_seed(3)
    u = torch.randint(-3, 4, (37, 8), generator=gen).float()  # integer scores: many ties
    v = torch.randint(-3, 4, (5003, 8), generator=gen).float()
    mask = torch.rand(37, 5003, generator=gen) < 0.2
    rows, cols = np.nonzero(mask.numpy())
    order = np.argsort(cols, kind="stable")
    excluded = ExcludedPairs(rows[order].astype(np.int64), cols[order].astype(np.int64))
    scores = u @ v.T
    for k in (1, 10, 50):
        ids, vals = dot_topk(u, v, k, item_block=512, groups=8, excluded=excluded)
        assert torch.equal(vals, brute(scores, k, mask))
        assert torch.equal(scores.gather(1, ids), vals)
        assert not mask.gather(1, ids).any()
