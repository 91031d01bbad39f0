"""``arms.evaluate.evaluate_arm``: what counts as a relevant item."""

from __future__ import annotations

import numpy as np
import pytest

from arms.data import Interactions
from arms.evaluate import evaluate_arm, evaluate_lists, held_out_users, user_groups
from arms.popularity import PopularityArm
from tests.arms.conftest import synthetic_catalog


def test_relevant_items_are_deduplicated_and_unseen() -> None:
    items = synthetic_catalog(n_items=6)  # ids 100..105
    # popularity in train: 102 (4) > 103 (3) > 104 (2) > 100, 101 (1 each)
    train = Interactions(
        [0] + [1] * 9 + [2],
        [100, 102, 102, 102, 102, 103, 103, 103, 104, 104, 101],
    )
    # user 0: 100 is in train, 102 repeats -> relevant {102, 105};
    # user 2: only a repeat of a training item -> no relevant item, skipped.
    test = Interactions([0, 0, 0, 0, 2], [100, 102, 102, 105, 101])
    arm = PopularityArm(half_life_days=None, device="cpu").fit(train, items)
    assert arm.top_k([0], k=3)[0].tolist() == [[102, 103, 104]]

    metrics = evaluate_arm(arm, test, items, k=3)

    # one hit (102 at rank 1) out of |{102, 105}| = 2 relevant items;
    # counting the raw held-out list (4 entries) would give 1 / 3.
    assert metrics["recall@3"] == pytest.approx(0.5)
    assert metrics["ndcg@3"] == pytest.approx(1.0 / (1.0 + 1.0 / np.log2(3.0)))


def test_evaluate_lists_groups_intervals_and_paired_differences() -> None:
    items = synthetic_catalog(n_items=6)
    train = Interactions([0] * 8 + [1, 2, 2], [100, 101] * 4 + [102, 103, 104])
    test = Interactions([0, 1, 2, 3, 3], [102, 100, 100, 105, 104], values=[5, 5, 2, 5, 5])
    users = held_out_users(train, test)
    assert users.users.tolist() == [0, 1, 2, 3] and users.n_train.tolist() == [8, 1, 2, 0]
    good = np.array([[102, 103], [100, 101], [100, 101], [105, 104]])
    bad = np.array([[103, 104], [101, 102], [101, 102], [101, 102]])
    report = evaluate_lists({"good": good, "bad": bad}, users, items, k=2, n_resamples=500)
    groups = {g.name: g for g in report.groups}
    assert report.group_sizes["new"] == 1 and report.group_sizes["cold-start"] == 2
    assert groups["all"].best == "good" and groups["all"].users == 4
    ndcg = groups["all"].metrics["good"]["ndcg@2"]
    assert ndcg.mean == pytest.approx(1.0) and ndcg.low == ndcg.high == pytest.approx(1.0)
    assert groups["all"].metrics["bad"]["ndcg@2"].mean == 0.0
    assert groups["all"].metrics["good"]["recall@2"].mean == pytest.approx((1 + 1 + 1 + 1) / 4)
    diff = groups["cold-start"].differences["bad"]["ndcg@2"]
    assert diff.mean == pytest.approx(-1.0) and diff.high == pytest.approx(-1.0)
    assert groups["cold-start"].differences["good"]["ndcg@2"].mean == 0.0
    assert report.overlap["all"]["good"]["bad"] == pytest.approx((0.5 + 0.5 + 0.5 + 0.0) / 4)
    # --min-rating: user 2's only held-out rating is 2, so it drops out of the metrics
    strict = held_out_users(train, test, min_rating=4)
    assert [len(r) for r in strict.relevant] == [1, 1, 0, 2]
    assert evaluate_lists({"good": good}, strict, items, k=2).group_sizes["all"] == 3


def test_user_groups_split_by_training_activity() -> None:
    groups = user_groups(np.array([0, 1, 5, 6, 30, 90]), cold_max=5)
    assert groups["new"].tolist() == [True] + [False] * 5
    assert groups["cold-start"].tolist() == [False, True, True, False, False, False]
    assert groups["warm"].tolist() == [False, False, False, True, True, True]
    tertiles = groups["activity-low"] | groups["activity-mid"] | groups["activity-high"]
    assert tertiles.tolist() == [False] + [True] * 5
    assert not (groups["activity-low"] & groups["activity-high"]).any()
