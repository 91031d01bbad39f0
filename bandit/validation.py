"""Argument checks shared by every policy: each error is a sentence naming the argument.

All failures raise :class:`ValueError`, so callers
such as the HTTP service can turn them into a 4xx answer without knowing the policy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Integral, Real

import numpy as np


def check_scalar(
    value: object,
    name: str,
    *,
    kind: type = float,
    min_val: float | None = None,
    max_val: float | None = None,
    include_min: bool = True,
    include_max: bool = True,
) -> float | int:
    """Return ``value`` as ``kind`` after checking type, finiteness and bounds.

    >>> check_scalar(0.5, "epsilon", min_val=0.0, max_val=1.0)
    0.5
    >>> check_scalar(2.0, "epsilon", min_val=0.0, max_val=1.0)
    Traceback (most recent call last):
    ...
    ValueError: epsilon must be <= 1.0, got 2.0.
    """
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"{name} must be a number, got {value!r}.")
    number: float | int
    if kind is int:
        if not isinstance(value, Integral) and not float(value).is_integer():
            raise ValueError(f"{name} must be an integer, got {value!r}.")
        number = int(value) if isinstance(value, Integral) else int(float(value))
    else:
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"{name} must be finite, got {number!r}.")
    if min_val is not None:
        if include_min and number < min_val:
            raise ValueError(f"{name} must be >= {min_val}, got {number!r}.")
        if not include_min and number <= min_val:
            raise ValueError(f"{name} must be > {min_val}, got {number!r}.")
    if max_val is not None:
        if include_max and number > max_val:
            raise ValueError(f"{name} must be <= {max_val}, got {number!r}.")
        if not include_max and number >= max_val:
            raise ValueError(f"{name} must be < {max_val}, got {number!r}.")
    return number


def check_arm(arm: object, n_arms: int, name: str = "arm") -> int:
    """Return ``arm`` as an int after checking it indexes one of ``n_arms`` arms."""
    if isinstance(arm, bool) or not isinstance(arm, Integral):
        raise ValueError(f"{name} must be an integer arm index, got {arm!r}.")
    arm = int(arm)
    if not 0 <= arm < n_arms:
        raise ValueError(f"{name} {arm} is unknown: valid arms are 0..{n_arms - 1}.")
    return arm


def check_batch(
    arms: Sequence[int] | np.ndarray,
    rewards: Sequence[float] | np.ndarray,
    n_arms: int,
    low: float,
    high: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Validate a batch of (arm, reward) pairs and return them as int64 / float64 arrays."""
    if not isinstance(arms, np.ndarray) and any(isinstance(a, (bool, np.bool_)) for a in arms):
        # numpy turns [0, True] into int64 [0, 1]; update() refuses a bool arm, so must this
        raise ValueError("arms must be integer arm indices, got a bool.")
    arms_arr = np.asarray(arms)
    raw_rewards = np.asarray(rewards)
    if raw_rewards.size and raw_rewards.dtype.kind not in "biuf":
        raise ValueError("rewards must be numbers.")
    if arms_arr.size and arms_arr.dtype.kind not in "iu":
        raise ValueError("arms must be integer arm indices.")
    rewards_arr = raw_rewards.astype(np.float64)
    if arms_arr.ndim != 1 or rewards_arr.ndim != 1:
        raise ValueError("arms and rewards must be one-dimensional.")
    if arms_arr.shape != rewards_arr.shape:
        raise ValueError(
            "arms and rewards must have the same length, "
            f"got {arms_arr.size} and {rewards_arr.size}."
        )
    arms_arr = arms_arr.astype(np.int64, copy=False)
    if arms_arr.size and (arms_arr.min() < 0 or arms_arr.max() >= n_arms):
        bad = arms_arr[(arms_arr < 0) | (arms_arr >= n_arms)][0]
        raise ValueError(f"arms contains unknown arm {bad}: valid arms are 0..{n_arms - 1}.")
    if not np.all(np.isfinite(rewards_arr)):
        raise ValueError("rewards must be finite: found NaN or infinity.")
    if rewards_arr.size and (rewards_arr.min() < low or rewards_arr.max() > high):
        raise ValueError(f"rewards must lie in [{low}, {high}] for this policy.")
    return arms_arr, rewards_arr


def check_per_arm(value: object, name: str, n_arms: int, default: float) -> np.ndarray:
    """Broadcast a scalar or per-arm sequence in [0, 1] to an array of length ``n_arms``."""
    if value is None:
        return np.full(n_arms, default, dtype=np.float64)
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"{name} must be a number or a sequence of numbers, got {value!r}."
        ) from None
    if arr.ndim == 0:
        arr = np.full(n_arms, float(arr))
    if arr.shape != (n_arms,):
        raise ValueError(
            f"{name} must be a number or a sequence of {n_arms} numbers, got {arr.size}."
        )
    if not np.all(np.isfinite(arr)) or arr.min() < 0.0 or arr.max() > 1.0:
        raise ValueError(f"{name} must lie in [0, 1] for every arm.")
    return arr


def check_beta_prior(prior_alpha: object, prior_beta: object) -> tuple[float, float]:
    """Validate the two positive parameters of a Beta prior."""
    return (
        float(check_scalar(prior_alpha, "prior_alpha", min_val=0.0, include_min=False)),
        float(check_scalar(prior_beta, "prior_beta", min_val=0.0, include_min=False)),
    )
