"""Propensities of the draft fusers against exact enumeration and empirical frequencies.

One request is repeated ``B`` times in a single micro-batch, so each row is an independent
draw of the same list distribution (fixed seeds throughout).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from bandit import make_fuser
from tests.bandit.fusion_reference import exact_draft_marginals

# three overlapping arms (items 1, 2, 3 are ranked by several)
LISTS = [[1, 2, 3, 4, 5, 6], [2, 1, 7, 3, 8, 9], [10, 2, 3, 1, 11, 12]]
WEIGHTS = [0.5, 0.3, 0.2]
K = 4
B = 40_000
CATS = {1: 0, 2: 0, 3: 1, 4: 1, 5: 2, 6: 2, 7: 0, 8: 1, 9: 2, 10: 0, 11: 1, 12: 2}


def _draw(name: str, seed: int, n_samples: int = 32, cap: int | None = None):
    items = np.repeat(np.array(LISTS)[:, None, :], B, axis=1)
    fuser = make_fuser(name, k=K, n_samples=n_samples, max_per_category=cap)
    table = np.zeros(max(CATS) + 1, dtype=np.int64)
    for item, cat in CATS.items():
        table[item] = cat
    return fuser.fuse(items, WEIGHTS, seed=seed, categories=table if cap else None)


@pytest.mark.parametrize(
    ("name", "rounds", "cap"),
    [
        ("slot-mix", False, None),
        ("team-draft", True, None),
        pytest.param("slot-mix", False, 2, marks=pytest.mark.slow),
        pytest.param("team-draft", True, 2, marks=pytest.mark.slow),
    ],
)
def test_item_position_frequencies_match_the_exact_marginals(name, rounds, cap) -> None:
    out = _draw(name, seed=11, cap=cap)
    exact, _ = exact_draft_marginals(
        LISTS, WEIGHTS, K, rounds=rounds, categories=CATS if cap else None, cap=cap
    )
    for j in range(K):
        support = sorted(x for (x, jj) in exact if jj == j)
        observed = np.array([(out.items[:, j] == x).sum() for x in support])
        assert observed.sum() == B  # nothing outside the exact support is ever shown
        expected = np.array([exact[(x, j)] for x in support]) * B
        if len(support) > 1:
            assert stats.chisquare(observed, expected).pvalue > 1e-3, (j, observed, expected)
        rows_est = [out.propensity[out.items[:, j] == x, j].mean() for x in support]
        assert np.allclose(rows_est, expected / B, atol=0.01)


@pytest.mark.parametrize(("name", "rounds"), [("slot-mix", False), ("team-draft", True)])
def test_propensity_estimates_are_unbiased_within_the_stated_error(name, rounds) -> None:
    n_samples = 16
    out = _draw(name, seed=5, n_samples=n_samples)
    exact, _ = exact_draft_marginals(LISTS, WEIGHTS, K, rounds=rounds)
    truth = np.vectorize(lambda x, j: exact[(int(x), int(j))])(
        out.items, np.broadcast_to(np.arange(K), out.items.shape)
    )
    err = out.propensity - truth
    # the first slot is exact
    assert np.allclose(err[:, 0], 0.0, atol=1e-12)
    # per (item, slot): the mean estimate equals the exact marginal (unbiased), and the
    # spread is within the documented bound sqrt(p (1 - p) / n_samples)
    for (x, j), p in exact.items():
        rows = out.items[:, j] == x
        if rows.sum() < 500:
            continue
        e = err[rows, j]
        bound = np.sqrt(p * (1 - p) / n_samples)
        assert abs(e.mean()) < 4 * bound / np.sqrt(rows.sum()) + 1e-9, (x, j)
        assert np.sqrt((e**2).mean()) <= bound * 1.05 + 1e-12, (x, j)


def test_slot_mix_source_probability_is_the_weight_and_matches_frequencies() -> None:
    out = _draw("slot-mix", seed=3)
    w = np.array(WEIGHTS)
    assert np.array_equal(out.source_prob, w[out.source])
    for j in range(K):
        observed = np.bincount(out.source[:, j], minlength=3)
        assert stats.chisquare(observed, w * B).pvalue > 1e-3


def test_team_draft_source_probabilities_match_enumeration_and_frequencies() -> None:
    out = _draw("team-draft", seed=4)
    _, exact = exact_draft_marginals(LISTS, WEIGHTS, K, rounds=True)
    for j in range(K):
        observed = np.bincount(out.source[:, j], minlength=3)
        expected = np.array([exact.get((a, j), 0.0) for a in range(3)])
        assert stats.chisquare(observed, expected * B).pvalue > 1e-3
        for a in range(3):
            rows = out.source[:, j] == a
            if rows.any():
                assert abs(out.source_prob[rows, j].mean() - expected[a]) < 0.01, (a, j)
    # every arm places exactly one item in the first round of three slots
    assert np.all(np.sort(out.source[:, :3], axis=1) == np.arange(3))


def test_a_broken_propensity_would_fail_the_comparison() -> None:
    """The slot-source weight is not the item-position marginal once lists overlap."""
    out = _draw("slot-mix", seed=11)
    exact, _ = exact_draft_marginals(LISTS, WEIGHTS, K, rounds=False)
    # item 2 at slot 1 is reached by every arm whose first item was placed
    naive = WEIGHTS[0] * WEIGHTS[0]  # e.g. "arm 0 twice" alone
    assert abs(exact[(2, 1)] - naive) > 0.1
    rows = out.items[:, 1] == 2
    assert abs(out.propensity[rows, 1].mean() - exact[(2, 1)]) < 0.01


def test_disjoint_lists_get_the_exact_closed_form() -> None:
    """Arms sharing no item in their top k: P(item of rank r of arm a at slot j) is
    w_a * Binomial(j, w_a).pmf(r), exactly; frequencies agree."""
    lists = [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]]
    items = np.repeat(np.array(lists)[:, None, :], B, axis=1)
    out = make_fuser("slot-mix", k=K, n_samples=2).fuse(items, WEIGHTS, seed=9)
    exact, _ = exact_draft_marginals(lists, WEIGHTS, K, rounds=False)
    truth = np.vectorize(lambda x, j: exact[(int(x), int(j))])(
        out.items, np.broadcast_to(np.arange(K), out.items.shape)
    )
    assert np.allclose(out.propensity, truth, rtol=1e-12)
    for j in range(K):
        support = sorted(x for (x, jj) in exact if jj == j)
        observed = np.array([(out.items[:, j] == x).sum() for x in support])
        expected = np.array([exact[(x, j)] for x in support]) * B
        assert stats.chisquare(observed, expected).pvalue > 1e-3
