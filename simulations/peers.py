"""Adapters that let peer libraries (river, MABWiser) play in the runner like our policies.

They exist for the benchmarks: the same runner, reward tables and seeds for every library.
Each adapter exposes ``select()`` (returning a :class:`Pick`), ``update``, ``update_batch`` and
``select_batch`` (returning a :class:`bandit.BatchSelection` with NaN propensities).  The
libraries are imported when an adapter is built (they are optional ``bench`` dependencies).

Names: ``river-ucb`` (``river.bandit.UCB(delta=1)``, i.e. UCB1), ``river-thompson``
(``river.bandit.ThompsonSampling`` with a ``Beta(1, 1)`` prior), ``mabwiser-ucb1``
(``LearningPolicy.UCB1(alpha=1)``) and ``mabwiser-thompson`` (``LearningPolicy.ThompsonSampling``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from bandit import BatchSelection

__all__ = ["PEERS", "MABWiserPolicy", "Pick", "RiverPolicy", "make_peer"]


@dataclass(frozen=True, slots=True)
class Pick:
    """A peer's decision (peers do not report propensities)."""

    arm: int
    propensity: float = math.nan


def _unweighted(arms: np.ndarray) -> BatchSelection:
    """A peer's batch of decisions: propensities unknown (NaN), as in :class:`Pick`."""
    return BatchSelection(arms, propensities=np.full(arms.size, math.nan))


class RiverPolicy:
    """``river.bandit.UCB`` or ``ThompsonSampling`` behind the runner's policy interface."""

    def __init__(self, kind: str, n_arms: int, seed: int, delta: float = 1.0) -> None:
        from river import bandit, proba

        self.name = f"river-{kind}"
        self.n_arms = n_arms
        self._arm_ids = list(range(n_arms))
        if kind == "ucb":
            self.policy: Any = bandit.UCB(delta=delta, seed=seed)
        elif kind == "thompson":
            self.policy = bandit.ThompsonSampling(reward_obj=proba.Beta(), seed=seed)
        else:
            raise ValueError(f"river kind must be 'ucb' or 'thompson', got {kind!r}.")

    def select(self) -> Pick:
        """Pull one arm."""
        return Pick(int(self.policy.pull(self._arm_ids)))

    def select_batch(self, n: int) -> BatchSelection:
        """Pull ``n`` arms without updates in between (river has no batch call)."""
        pull, ids = self.policy.pull, self._arm_ids
        return _unweighted(np.fromiter((pull(ids) for _ in range(n)), dtype=np.int64, count=n))

    def update(self, arm: int, reward: float) -> None:
        """Record one reward."""
        self.policy.update(arm, reward)

    def update_batch(self, arms: np.ndarray, rewards: np.ndarray) -> None:
        """Record many rewards (one river ``update`` each)."""
        for arm, reward in zip(arms.tolist(), rewards.tolist(), strict=True):
            self.policy.update(arm, reward)


class MABWiserPolicy:
    """MABWiser's ``MAB`` with ``UCB1`` or ``ThompsonSampling`` behind the runner's interface.

    MABWiser refuses to predict before ``fit``, and its UCB1 never tries an arm it has not
    been fitted on, so the first rounds go round-robin: UCB1 fits once every arm has one
    reward, Thompson sampling after the first reward; later rewards go to ``partial_fit``.
    """

    def __init__(self, kind: str, n_arms: int, seed: int, alpha: float = 1.0) -> None:
        from mabwiser.mab import MAB, LearningPolicy

        self.name = f"mabwiser-{kind}"
        self.n_arms = n_arms
        if kind == "ucb1":
            policy: Any = LearningPolicy.UCB1(alpha=alpha)
            self._warmup = n_arms
        elif kind == "thompson":
            policy = LearningPolicy.ThompsonSampling()
            self._warmup = 1
        else:
            raise ValueError(f"mabwiser kind must be 'ucb1' or 'thompson', got {kind!r}.")
        self.mab = MAB(list(range(n_arms)), policy, seed=seed)
        self._fitted = False
        self._next = 0
        self._seen: tuple[list[int], list[float]] = ([], [])

    def select(self) -> Pick:
        """One ``predict`` (round-robin before the first fit)."""
        if not self._fitted:
            arm = self._next % self.n_arms
            self._next += 1
            return Pick(arm)
        return Pick(int(self.mab.predict()))

    def select_batch(self, n: int) -> BatchSelection:
        """``predict`` for ``n`` empty contexts in one call."""
        if not self._fitted:
            return _unweighted(np.array([self.select().arm for _ in range(n)], dtype=np.int64))
        return _unweighted(
            np.asarray(self.mab.predict(np.zeros((n, 1))), dtype=np.int64).reshape(n)
        )

    def update(self, arm: int, reward: float) -> None:
        """One ``partial_fit`` (buffered until the warm-up ``fit``)."""
        self.update_batch(np.array([arm]), np.array([reward]))

    def update_batch(self, arms: np.ndarray, rewards: np.ndarray) -> None:
        """One ``partial_fit`` with the whole batch."""
        if self._fitted:
            self.mab.partial_fit(arms, rewards)
            return
        self._seen[0].extend(np.asarray(arms).tolist())
        self._seen[1].extend(np.asarray(rewards).tolist())
        if len(set(self._seen[0])) >= self._warmup:
            self.mab.fit(*self._seen)
            self._fitted = True


PEERS: dict[str, tuple[type[RiverPolicy] | type[MABWiserPolicy], str]] = {
    "river-ucb": (RiverPolicy, "ucb"),
    "river-thompson": (RiverPolicy, "thompson"),
    "mabwiser-ucb1": (MABWiserPolicy, "ucb1"),
    "mabwiser-thompson": (MABWiserPolicy, "thompson"),
}


def make_peer(name: str, n_arms: int, seed: int, **params: Any) -> RiverPolicy | MABWiserPolicy:
    """Build the peer adapter registered as ``name`` (see :data:`PEERS`)."""
    if name not in PEERS:
        raise ValueError(f"unknown peer policy {name!r}; choose one of {sorted(PEERS)}.")
    cls, kind = PEERS[name]
    return cls(kind, n_arms=n_arms, seed=seed, **params)
