"""Ranking metrics on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from arms.metrics import (
    catalogue_coverage,
    intra_list_diversity,
    list_overlap,
    ndcg_at_k,
    ndcg_per_user,
    precision_per_user,
    recall_at_k,
    recall_per_user,
)


def test_perfect_and_empty_lists() -> None:
    rec = np.array([[1, 2, 3], [4, 5, 6]])
    rel = [np.array([1, 2, 3]), np.array([7])]
    assert recall_at_k(rec, rel) == pytest.approx(0.5)
    assert ndcg_at_k(rec, rel) == pytest.approx(0.5)


def test_ndcg_discounts_by_rank() -> None:
    rel = [np.array([5])]
    first = ndcg_at_k(np.array([[5, 1, 2]]), rel)
    third = ndcg_at_k(np.array([[1, 2, 5]]), rel)
    assert first == 1.0 and third == pytest.approx(1 / np.log2(4))


def test_recall_is_true_recall_and_precision_divides_by_k() -> None:
    rec, rel = np.array([[1, 2]]), [np.arange(1, 11)]
    assert recall_at_k(rec, rel) == pytest.approx(0.2)  # 2 of 10 relevant, not 2 of min(2, 10)
    assert precision_per_user(rec, rel).tolist() == [1.0]
    rec = np.array([[1, 9, 8, 7]])
    assert recall_per_user(rec, [np.array([1, 2])]).tolist() == [0.5]
    assert precision_per_user(rec, [np.array([1, 2])]).tolist() == [0.25]


def test_per_user_values_are_nan_without_relevant_items() -> None:
    rec = np.array([[1, 2], [3, 4]])
    rel = [np.array([2]), np.array([], dtype=int)]
    ndcg = ndcg_per_user(rec, rel)
    assert ndcg[0] == pytest.approx(1 / np.log2(3)) and np.isnan(ndcg[1])
    assert np.isnan(recall_per_user(rec, rel)[1])
    assert ndcg_at_k(rec, rel) == pytest.approx(ndcg[0])


def test_list_overlap_counts_shared_items_per_list() -> None:
    a = np.array([[1, 2, 3, -1], [5, 6, 7, 8]])
    b = np.array([[3, 2, 9, -1], [5, 6, 7, 8]])
    assert list_overlap(a, b) == pytest.approx((2 / 4 + 1.0) / 2)
    with pytest.raises(ValueError, match="shape"):
        list_overlap(a, b[:1])


def test_users_without_relevant_items_are_skipped_and_slots_ignored() -> None:
    rec = np.array([[1, -1], [2, 3]])
    assert recall_at_k(rec, [np.array([1]), np.array([], dtype=int)]) == 1.0
    assert catalogue_coverage(rec, 4) == 0.75
    with pytest.raises(ValueError, match="n_items"):
        catalogue_coverage(rec, 0)
    with pytest.raises(ValueError, match="relevant"):
        recall_at_k(rec, [np.array([1])])


def test_diversity_is_zero_for_one_genre_and_one_for_disjoint() -> None:
    feats = {1: np.array([1.0, 0.0]), 2: np.array([1.0, 0.0]), 3: np.array([0.0, 1.0])}
    assert intra_list_diversity(np.array([[1, 2]]), feats) == pytest.approx(0.0)
    assert intra_list_diversity(np.array([[1, 3]]), feats) == pytest.approx(1.0)
