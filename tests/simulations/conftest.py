"""Shared fixtures for the simulations tests: small stand-in policies that record their calls."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest


@dataclass(frozen=True)
class Pick:
    arm: int
    propensity: float = float("nan")


class BetaThompson:
    """A tiny Beta-Bernoulli Thompson sampler, independent of the ``bandit`` package."""

    def __init__(self, n_arms: int, seed: int, prior: float = 1.0) -> None:
        self.rng = np.random.default_rng(seed)
        self.successes = np.full(n_arms, prior)
        self.failures = np.full(n_arms, prior)

    def select(self) -> Pick:
        return Pick(int(np.argmax(self.rng.beta(self.successes, self.failures))))

    def update(self, arm: int, reward: float) -> None:
        self.successes[arm] += reward
        self.failures[arm] += 1.0 - reward

    def update_batch(self, arms: np.ndarray, rewards: np.ndarray) -> None:
        np.add.at(self.successes, arms, rewards)
        np.add.at(self.failures, arms, 1.0 - rewards)


class Recorder:
    """Plays arms round-robin (or always ``fixed``) and records every call it receives."""

    def __init__(self, n_arms: int, seed: int, fixed: int | None = None) -> None:
        self.n_arms, self.seed, self.fixed = n_arms, seed, fixed
        self.selects = 0
        self.updates: list[tuple[int, int, float]] = []  # (selects so far, arm, reward)
        self.batches: list[tuple[int, np.ndarray, np.ndarray]] = []

    def select(self) -> Pick:
        arm = self.selects % self.n_arms if self.fixed is None else self.fixed
        self.selects += 1
        return Pick(arm)

    def update(self, arm: int, reward: float) -> None:
        self.updates.append((self.selects, arm, reward))

    def update_batch(self, arms: np.ndarray, rewards: np.ndarray) -> None:
        self.batches.append((self.selects, arms.copy(), rewards.copy()))


RECORDERS: list[Recorder] = []


def standin_factory(name: str, n_arms: int, seed: int, **params: Any) -> Any:
    """``make_policy`` stand-in: ``beta-thompson``, ``recorder`` and ``fixed`` (``arm=``)."""
    if name == "beta-thompson":
        return BetaThompson(n_arms, seed, **params)
    recorder = Recorder(n_arms, seed, fixed=params.get("arm"))
    RECORDERS.append(recorder)
    return recorder


@pytest.fixture
def recorders() -> list[Recorder]:
    """The recorders built during the test (in-process runs only)."""
    RECORDERS.clear()
    return RECORDERS


@pytest.fixture
def factory() -> Any:
    """The stand-in ``make_policy`` (see :func:`standin_factory`)."""
    return standin_factory
