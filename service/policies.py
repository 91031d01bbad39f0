"""Glue between stored experiments and :mod:`bandit` policies.

Decisions never deserialise a policy: each state change stores the allocation it implies
(``policy_states.allocation``), and a decision draws its arm from that vector with a fresh,
logged seed::

    u = random.Random(seed).random() * sum(probabilities)
    arm = first index with u < cumulative sum of probabilities up to it

so the logged probabilities are exactly the ones the arm was drawn with (what off-policy
evaluation and the sample-ratio test need), and every decision can be replayed from the log.
"""

from __future__ import annotations

import json
import math
import random
import threading
from typing import Any

import numpy as np

from bandit import Policy
from service.errors import Invalid
from service.models import Experiment


def build_policy(exp: Experiment, n_arms: int | None = None) -> Policy:
    """A fresh policy for ``exp`` (its state before any reward), over its first ``n_arms``
    arms (default: all; the arms it was created with, when arms were added since)."""
    n = len(exp.arms) if n_arms is None else n_arms
    return make(
        exp.policy,
        n_arms=n,
        seed=exp.seed,
        burn_in=exp.burn_in,
        floors=exp.floors[:n] if isinstance(exp.floors, list) else exp.floors,
        caps=exp.caps[:n] if isinstance(exp.caps, list) else exp.caps,
        control_arm=exp.control_arm,
        control_share=exp.control_share,
        params=exp.params,
    )


def make(
    policy: str,
    *,
    n_arms: int,
    seed: int,
    burn_in: int,
    floors: Any,
    caps: Any,
    control_arm: int | None,
    control_share: float,
    params: dict[str, Any],
) -> Policy:
    """``bandit.make_policy`` with its errors turned into :class:`Invalid` (HTTP 422)."""
    import bandit

    if policy not in bandit.POLICIES:
        raise Invalid(
            f"unknown policy {policy!r}; choose one of: {', '.join(sorted(bandit.POLICIES))}"
        )
    reserved = {"n_arms", "seed", "burn_in", "floors", "caps", "control_arm", "control_share"}
    clash = sorted(reserved & set(params))
    if clash:
        raise Invalid(f"params may not set {', '.join(clash)}: they are experiment fields")
    try:
        return bandit.make_policy(
            policy,
            n_arms=n_arms,
            seed=seed,
            burn_in=burn_in,
            floors=floors,
            caps=caps,
            control_arm=control_arm,
            control_share=control_share,
            **params,
        )
    except (ValueError, TypeError, OverflowError) as err:
        raise Invalid(f"invalid policy configuration: {err}") from err


def restore(state: dict[str, Any]) -> Policy:
    from bandit import from_state_dict

    return from_state_dict(state)


def allocation_of(policy: Policy) -> list[float]:
    alloc = np.asarray(policy.allocation(), dtype=float)
    return [float(x) for x in alloc]


def check_reward(policy: Policy, normalized: float, what: str) -> None:
    """Raise :class:`Invalid` unless ``policy`` accepts the observation ``normalized``.

    The test is the policy's own (``bandit.validation.check_batch`` against its
    ``reward_range``), run before anything is stored.
    """
    from bandit.validation import check_batch

    low, high = policy.reward_range
    try:
        check_batch(np.zeros(1, dtype=np.int64), np.array([normalized]), 1, low, high)
    except ValueError as err:
        raise Invalid(f"{what} cannot be learned by {policy.name!r}: {err}") from err


def checked_result(policy: Policy) -> tuple[list[float], dict[str, Any]]:
    """The allocation and the JSON state of ``policy`` after an update, or ``ValueError``
    when either holds a non-finite number (a reward too large for the policy's arithmetic):
    neither could be stored, nor serve decisions."""
    allocation = allocation_of(policy)
    if not all(math.isfinite(p) for p in allocation):
        raise ValueError(
            "its allocation would not be finite (a reward too large for its arithmetic)"
        )
    try:
        state: dict[str, Any] = json.loads(json.dumps(policy.state_dict(), allow_nan=False))
    except ValueError as err:
        raise ValueError(f"its state would hold a non-finite number ({err})") from err
    return allocation, state


def is_bounded(policy: Policy) -> bool:
    """True for policies that learn rates in [0, 1] (gaussian-thompson takes any magnitude
    up to its ``reward_range``)."""
    low, high = policy.reward_range
    return bool(low >= 0.0 and high <= 1.0)


def draw(probabilities: list[float], seed: int) -> int:
    """The arm for a decision: the documented, replayable draw (see module docstring).

    Pure Python on purpose: for a handful of arms it is ~20x cheaper than numpy.
    """
    u = random.Random(seed).random() * sum(probabilities)  # noqa: S311 (replayable, not secret)
    acc = 0.0
    for arm, p in enumerate(probabilities):
        acc += p
        if u < acc:
            return arm
    return max(i for i, p in enumerate(probabilities) if p > 0)


class PolicyCache:
    """Per-process cache of deserialised policies, keyed by (experiment id, version).

    A learner *takes* the policy out (so a failed transaction can never leave a mutated
    object behind) and *puts* the updated one back after its commit. Another process
    moving the version on makes the entry stale; it is then rebuilt from the stored state.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[int, tuple[int, Policy]] = {}

    def take(self, experiment_id: int, version: int) -> Policy | None:
        with self._lock:
            item = self._items.pop(experiment_id, None)
        if item is not None and item[0] == version:
            return item[1]
        return None

    def put(self, experiment_id: int, version: int, policy: Policy) -> None:
        with self._lock:
            self._items[experiment_id] = (version, policy)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
