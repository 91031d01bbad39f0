"""Confidence intervals for a mean: the one implementation the service and simulations use.

>>> low, high = mean_interval(2.0, 1.0, 3)  # Student t with 2 degrees of freedom
>>> round(float(low), 3), round(float(high), 3)
(-0.484, 4.484)
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

Distribution = Literal["t", "normal"]

__all__ = ["Distribution", "mean_interval"]


def mean_interval(
    mean: ArrayLike,
    std: ArrayLike,
    n: ArrayLike,
    confidence: float = 0.95,
    distribution: Distribution = "t",
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Two-sided interval ``mean ± q * std / sqrt(n)`` for the mean of ``n`` observations.

    Parameters
    ----------
    mean, std, n
        Sample mean, sample standard deviation (``ddof=1``) and number of observations;
        broadcast together (one interval per element).
    confidence
        Coverage in (0, 1).
    distribution
        ``"t"``: ``q`` is the Student-t quantile with ``n - 1`` degrees of freedom (small
        samples, e.g. a few seeds); ``"normal"``: the standard normal quantile (large
        samples, e.g. an arm's observations in the service).

    Returns
    -------
    low, high
        Arrays of the broadcast shape. Where ``n < 2`` the interval collapses to the mean.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if distribution not in ("t", "normal"):
        raise ValueError(f"distribution must be 't' or 'normal', got {distribution!r}")
    m, s, k = np.broadcast_arrays(
        np.asarray(mean, dtype=np.float64),
        np.asarray(std, dtype=np.float64),
        np.asarray(n, dtype=np.float64),
    )
    level = 0.5 + confidence / 2
    enough = k >= 2
    if distribution == "t":
        q = np.where(enough, stats.t.ppf(level, df=np.where(enough, k - 1, 1)), 0.0)
    else:
        q = np.where(enough, stats.norm.ppf(level), 0.0)
    half = np.where(enough, q * s / np.sqrt(np.where(enough, k, 1)), 0.0)
    return m - half, m + half
