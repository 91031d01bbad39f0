r"""Bernoulli generalized likelihood ratio (GLR) change-point test.

For the observations :math:`x_1..x_n` of one arm since its last restart, the statistic is

.. math:: G_n = \max_{s} \; s\,\mathrm{kl}(\hat\mu_{1:s}, \hat\mu_{1:n})
          + (n-s)\,\mathrm{kl}(\hat\mu_{s+1:n}, \hat\mu_{1:n})

and a change is declared when :math:`G_n > \log(3 n^{3/2} / \delta)` (Besson, Kaufmann,
Maillard & Seznec, JMLR 2022). Candidate split points are taken on a grid of at most
``max_splits`` points so one test costs O(max_splits) whatever ``n``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

_EPS = 1e-12


class History:
    """Recent observations of one arm since its last restart, with prefix sums for O(1) means.

    At most ``max_len`` observations are kept: when full, the older half is dropped, so
    memory and the saved state stay bounded on an arm that never changes, while the test
    always sees at least ``max_len // 2`` of the latest observations.
    """

    __slots__ = ("_prefix", "max_len", "n")

    def __init__(self, max_len: int = 5000) -> None:
        self.max_len = max_len
        self._prefix = np.zeros(64)
        self.n = 0

    def append(self, reward: float) -> None:
        """Record one observation."""
        n = self.n
        if n >= self.max_len:
            kept = np.diff(self.prefix)[n - self.max_len // 2 :]
            self._prefix = np.zeros(max(64, 2 * kept.size))
            self._prefix[1 : kept.size + 1] = np.cumsum(kept)
            n = self.n = kept.size
        if n + 1 >= self._prefix.size:
            self._prefix = np.concatenate([self._prefix, np.zeros(self._prefix.size)])
        self._prefix[n + 1] = self._prefix[n] + reward
        self.n = n + 1

    @property
    def prefix(self) -> np.ndarray:
        """``prefix[k]`` is the sum of the first ``k`` observations (length ``n + 1``)."""
        return self._prefix[: self.n + 1]

    def state_dict(self) -> dict[str, Any]:
        """The prefix sums themselves, so a restored history is bit-for-bit the same."""
        return {"prefix": self.prefix.tolist()}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any], max_len: int = 5000) -> History:
        """Rebuild a history saved by :meth:`state_dict`."""
        h = cls(max_len)
        prefix = np.asarray(state["prefix"], dtype=np.float64)
        h._prefix = np.zeros(max(64, 2 * prefix.size))
        h._prefix[: prefix.size] = prefix
        h.n = prefix.size - 1
        return h


def bernoulli_kl(p: np.ndarray, q: np.ndarray | float) -> np.ndarray:
    """Kullback-Leibler divergence between Bernoulli(p) and Bernoulli(q), elementwise."""
    p = np.clip(p, _EPS, 1.0 - _EPS)
    q = np.clip(q, _EPS, 1.0 - _EPS)
    return p * np.log(p / q) + (1.0 - p) * np.log((1.0 - p) / (1.0 - q))


def threshold(n: int, delta: float) -> float:
    """Detection threshold :math:`\\log(3 n^{3/2} / \\delta)`."""
    return float(np.log(3.0 * n**1.5 / delta))


def statistic(history: History, max_splits: int = 512) -> float:
    """The GLR statistic :math:`G_n` of ``history`` (0 for fewer than two observations)."""
    n = history.n
    if n < 2:
        return 0.0
    prefix = history.prefix
    step = max(1, n // max_splits)
    s = np.arange(step, n, step)
    total = prefix[n]
    mu = total / n
    left = prefix[s] / s
    right = (total - prefix[s]) / (n - s)
    g = s * bernoulli_kl(left, mu) + (n - s) * bernoulli_kl(right, mu)
    return float(g.max())


def detect(history: History, delta: float) -> bool:
    """True when the GLR test finds a change in the mean of ``history`` at level ``delta``."""
    return history.n >= 2 and statistic(history) > threshold(history.n, delta)
