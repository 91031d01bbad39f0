"""``arms.splits``: nested validation split, simulated cold start, split fingerprints."""

from __future__ import annotations

import numpy as np
import pytest

from arms.data import Interactions, temporal_split
from arms.splits import (
    SplitSpec,
    make_split,
    nested_split,
    simulate_cold_start,
    split_fingerprint,
)
from tests.arms.conftest import synthetic_interactions


def test_nested_split_cuts_the_training_part_only() -> None:
    inter = synthetic_interactions(n_users=10)
    train, test = temporal_split(inter)
    inner, valid = nested_split(train)
    assert len(inner) + len(valid) == len(train)
    test_rows = set(zip(test.users.tolist(), test.timestamps.tolist(), strict=True))
    valid_rows = set(zip(valid.users.tolist(), valid.timestamps.tolist(), strict=True))
    assert not test_rows & valid_rows
    for user in np.unique(valid.users):
        assert (
            inner.timestamps[inner.users == user].max()
            <= valid.timestamps[valid.users == user].min()
        )


def test_cold_start_users_keep_their_earliest_interactions() -> None:
    inter = synthetic_interactions(n_users=20, per_user=8)
    train, test = temporal_split(inter)
    cut = simulate_cold_start(train, test, share=0.25, keep=2, seed=1)
    counts = dict(zip(*np.unique(cut.users, return_counts=True), strict=True))
    cold = [u for u, c in counts.items() if c == 2]
    assert len(cold) == 5  # round(0.25 * 20 test users)
    for user in cold:
        mine = train.timestamps[train.users == user]
        kept = cut.timestamps[cut.users == user]
        assert sorted(kept.tolist()) == sorted(mine.tolist())[:2]
    again = simulate_cold_start(train, test, share=0.25, keep=2, seed=1)
    assert np.array_equal(again.users, cut.users) and np.array_equal(again.items, cut.items)
    with pytest.raises(ValueError, match="keep"):
        simulate_cold_start(train, test, share=0.2, keep=0)


def test_fingerprint_changes_with_the_data_or_the_split() -> None:
    inter = synthetic_interactions(n_users=12)
    base = split_fingerprint(*make_split(inter, SplitSpec()))
    assert base == split_fingerprint(*make_split(inter, SplitSpec()))
    assert base != split_fingerprint(*make_split(inter, SplitSpec(test_fraction=0.3)))
    assert base != split_fingerprint(*make_split(inter, SplitSpec(cold_users=0.2)))
    other = Interactions(inter.users, inter.items[::-1], inter.timestamps, inter.values)
    assert base != split_fingerprint(*make_split(other, SplitSpec()))
    with pytest.raises(ValueError, match="cold_users"):
        SplitSpec(cold_users=1.0)
