"""Seeded, vectorised percentile bootstrap over users, for means and paired differences.

Every resample draws the same users for every column (the arms), so differences
between columns are *paired*: the interval of ``mean(a - b)`` accounts for the users
both arms find easy or hard. One resample is a vector of multinomial counts over the
users (users drawn with replacement), and all resamples of all columns are one matrix product
``counts (B x n) @ values (n x A) / n``.

>>> import numpy as np
>>> values = np.random.default_rng(0).normal(1.0, 1.0, size=(400, 1))
>>> est = bootstrap_means(values, n_resamples=2000, seed=1)[0]
>>> bool(est.low < 1.0 < est.high)
True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Estimate", "bootstrap_differences", "bootstrap_means", "resample_counts"]


@dataclass(frozen=True, slots=True)
class Estimate:
    """A mean over users with its bootstrap percentile interval.

    Attributes
    ----------
    mean : float
        The plain mean over the users (not the bootstrap mean).
    low, high : float
        The ``(1 - level) / 2`` and ``(1 + level) / 2`` percentiles of the resampled means.
    n : int
        Users that entered the mean.
    """

    mean: float
    low: float
    high: float
    n: int

    def as_dict(self) -> dict[str, float]:
        """``{"mean", "low", "high", "n"}`` with floats rounded to 6 places (for JSON)."""
        return {
            "mean": round(self.mean, 6),
            "low": round(self.low, 6),
            "high": round(self.high, 6),
            "n": self.n,
        }


def resample_counts(n: int, n_resamples: int, seed: int) -> np.ndarray:
    """How often each of ``n`` users is drawn in each resample, shape (n_resamples, n).

    >>> resample_counts(5, 3, seed=0).sum(1).tolist()
    [5, 5, 5]
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}.")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be at least 1, got {n_resamples}.")
    draws = np.random.default_rng(seed).integers(0, n, size=(n_resamples, n))
    draws += np.arange(n_resamples)[:, None] * n  # one bincount for all resamples
    return (
        np.bincount(draws.ravel(), minlength=n_resamples * n)
        .reshape(n_resamples, n)
        .astype(np.float64)
    )


def bootstrap_means(
    values: np.ndarray, n_resamples: int = 2000, level: float = 0.95, seed: int = 0
) -> list[Estimate]:
    """Mean and percentile interval of each column of ``values`` (users x columns).

    Rows holding a NaN in any column are left out (a metric undefined for that user),
    so all columns use the same users and stay paired.
    """
    matrix = _as_matrix(values)
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level}.")
    matrix = matrix[~np.isnan(matrix).any(axis=1)]
    n = len(matrix)
    if n == 0:
        nan = float("nan")
        return [Estimate(nan, nan, nan, 0) for _ in range(matrix.shape[1])]
    means = resample_counts(n, n_resamples, seed) @ matrix / n
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2], axis=0)
    centre = matrix.mean(axis=0)
    return [
        Estimate(float(c), float(a), float(b), n) for c, a, b in zip(centre, lo, hi, strict=True)
    ]


def bootstrap_differences(
    values: np.ndarray,
    reference: int,
    n_resamples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> list[Estimate]:
    """Paired ``mean(column - column[reference])`` with its interval, for every column.

    The reference column's own entry is exactly zero.
    """
    matrix = _as_matrix(values)
    if not 0 <= reference < matrix.shape[1]:
        raise ValueError(f"reference must index a column of values, got {reference}.")
    return bootstrap_means(matrix - matrix[:, [reference]], n_resamples, level, seed)


def _as_matrix(values: np.ndarray) -> np.ndarray:
    matrix = np.asarray(values, dtype=np.float64)
    if matrix.ndim == 1:
        matrix = matrix[:, None]
    if matrix.ndim != 2:
        raise ValueError(f"values must be 1- or 2-dimensional, got shape {matrix.shape}.")
    return matrix
