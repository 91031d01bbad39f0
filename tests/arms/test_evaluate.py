"""``arms.evaluate.evaluate_arm``: what counts as a relevant item."""

from __future__ import annotations

import numpy as np
import pytest

from arms.data import Interactions
from arms.evaluate import evaluate_arm
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

    # one hit (102 at rank 1) out of min(3, |{102, 105}|) = 2 relevant items;
    # counting the raw held-out list (4 entries) would give 1 / 3.
    assert metrics["recall@3"] == pytest.approx(0.5)
    assert metrics["ndcg@3"] == pytest.approx(1.0 / (1.0 + 1.0 / np.log2(3.0)))
