"""How train, test and validation sets are derived, and how to tell two splits apart.

* :func:`nested_split`: the validation split used for tuning and for the arms that
  pick a hyper-parameter themselves (EASE's regularisation). It applies
  :func:`arms.data.temporal_split` per user to the *training* interactions, so the
  test interactions are never looked at.
* :func:`simulate_cold_start`: a seeded share of the users keeps only its earliest
  few training interactions (their held-out interactions are unchanged), which
  makes the "one or a few ratings" cold-start group measurable on data sets such as
  MovieLens where every user has at least 20 ratings.
* :func:`split_fingerprint`: a SHA-256 of the train and test tables, written next to
  saved models so that evaluation can refuse data that would give a different split.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from arms.data import Interactions, temporal_split

__all__ = [
    "SplitSpec",
    "make_split",
    "nested_split",
    "simulate_cold_start",
    "split_fingerprint",
]

VALIDATION_FRACTION = 0.2
"""Share of each user's latest training interactions held out for validation."""


@dataclass(frozen=True, slots=True)
class SplitSpec:
    """Everything that determines a train/test split of one interactions table.

    Attributes
    ----------
    test_fraction : float
        Share held out (per user or overall, see ``by``).
    by : {"user", "global"}
        See :func:`arms.data.temporal_split`.
    cold_users : float
        Share of the users whose training history is cut to ``cold_history`` (0: none).
    cold_history : int
        Training interactions such a user keeps (its earliest ones).
    seed : int
        Chooses the cold-start users.
    """

    test_fraction: float = 0.2
    by: str = "user"
    cold_users: float = 0.0
    cold_history: int = 3
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 < float(self.test_fraction) < 1.0:
            raise ValueError(f"test_fraction must lie in (0, 1), got {self.test_fraction}.")
        if self.by not in ("user", "global"):
            raise ValueError(f"by must be 'user' or 'global', got {self.by!r}.")
        if not 0.0 <= float(self.cold_users) < 1.0:
            raise ValueError(f"cold_users must lie in [0, 1), got {self.cold_users}.")
        if isinstance(self.cold_history, bool) or int(self.cold_history) < 1:
            raise ValueError(f"cold_history must be a positive integer, got {self.cold_history}.")


def make_split(interactions: Interactions, spec: SplitSpec) -> tuple[Interactions, Interactions]:
    """Train and test interactions for ``spec`` (temporal split, then simulated cold start)."""
    train, test = temporal_split(interactions, spec.test_fraction, by=spec.by)  # type: ignore[arg-type]
    if spec.cold_users > 0:
        train = simulate_cold_start(train, test, spec.cold_users, spec.cold_history, spec.seed)
    return train, test


def nested_split(
    train: Interactions, fraction: float = VALIDATION_FRACTION
) -> tuple[Interactions, Interactions]:
    """Inner-train and validation interactions: each user's latest ``fraction`` of ``train``.

    Users with a single training interaction stay wholly in the inner-train part.

    >>> inner, valid = nested_split(Interactions([1] * 5, [1, 2, 3, 4, 5], [1, 2, 3, 4, 5]))
    >>> inner.items.tolist(), valid.items.tolist()
    ([1, 2, 3, 4], [5])
    """
    return temporal_split(train, fraction, by="user")


def simulate_cold_start(
    train: Interactions, test: Interactions, share: float, keep: int, seed: int = 0
) -> Interactions:
    """``train`` where a seeded ``share`` of the test users keeps only its ``keep`` earliest rows.

    Only users that have both training and test interactions and more than ``keep``
    training interactions are candidates; ``round(share * n_test_users)`` of them (or
    all candidates, if fewer) are cut.
    """
    if not 0.0 <= share < 1.0:
        raise ValueError(f"share must lie in [0, 1), got {share}.")
    if keep < 1:
        raise ValueError(f"keep must be at least 1, got {keep}.")
    test_users = np.unique(test.users)
    users, counts = np.unique(train.users, return_counts=True)
    eligible = users[(counts > keep) & np.isin(users, test_users)]
    n_cut = min(len(eligible), round(share * len(test_users)))
    if n_cut == 0:
        return train
    chosen = np.sort(np.random.default_rng(seed).choice(eligible, size=n_cut, replace=False))
    n = len(train)
    order = np.lexsort((np.arange(n), train.timestamps, train.users))
    sorted_users = train.users[order]
    starts = np.searchsorted(sorted_users, sorted_users, side="left")
    rank = np.arange(n) - starts
    drop_sorted = np.isin(sorted_users, chosen) & (rank >= keep)
    keep_mask = np.ones(n, dtype=bool)
    keep_mask[order[drop_sorted]] = False
    return train.subset(keep_mask)


def split_fingerprint(train: Interactions, test: Interactions) -> str:
    """SHA-256 (hex) of the user, item and timestamp columns of ``train`` and ``test``.

    Equal fingerprints mean the same rows in the same order, so the same relevant items.
    """
    digest = hashlib.sha256()
    for part in (train, test):
        for column in (part.users, part.items, part.timestamps):
            digest.update(np.ascontiguousarray(column, dtype=np.int64).tobytes())
        digest.update(np.ascontiguousarray(part.values, dtype=np.float32).tobytes())
        digest.update(b"|")
    return digest.hexdigest()
