"""What every off-policy estimator reads and returns, and the shared bootstrap.

An estimator sees an :class:`EvaluationInput`: the log, the evaluation policy's probability
of each logged action at its logged position, its whole distribution at that position (for
the model-based estimators) and, optionally, a reward model's predictions. It returns an
:class:`Estimate` with a percentile-bootstrap confidence interval, the effective sample size
``(sum w)^2 / sum w^2`` of its importance weights and the largest weight.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import lru_cache
from typing import ClassVar, Generic, TypeVar

import numpy as np

from bandit.validation import check_scalar
from simulations.logged import LoggedFeedback

__all__ = [
    "Estimate",
    "Estimator",
    "EvaluationInput",
    "Terms",
    "bootstrap_interval",
    "evaluation_input",
    "rows_input",
]

_BOOT_CELLS = 1 << 24  # bootstrap cells (replicates x rounds) held in memory at once


@dataclass(frozen=True, slots=True)
class Estimate:
    """One estimator's answer for one evaluation policy."""

    estimator: str
    value: float
    ci_low: float
    ci_high: float
    ess: float  # effective sample size of the importance weights (n for DM)
    max_weight: float  # largest importance weight (nan for DM)
    n_rounds: int


@dataclass(frozen=True, slots=True)
class EvaluationInput:
    """A log paired with an evaluation policy (and optionally a reward model).

    Attributes
    ----------
    log
        The logged feedback.
    pi_logged
        ``(n,)`` evaluation probability of each logged action at its logged position.
    pi_position
        ``(n, n_actions)`` evaluation distribution over actions at each row's position.
    q_hat
        ``(n, n_actions)`` predicted reward of every action at each row's context and
        position (``None`` without a reward model).
    """

    log: LoggedFeedback
    pi_logged: np.ndarray
    pi_position: np.ndarray
    q_hat: np.ndarray | None = None

    @property
    def weights(self) -> np.ndarray:
        """Importance weights ``pi(a_i) / p(a_i)``."""
        return self.pi_logged / self.log.propensities

    def require_model(self, estimator: str) -> np.ndarray:
        """``q_hat``, or a ``ValueError`` saying that ``estimator`` needs a reward model."""
        if self.q_hat is None:
            raise ValueError(f"q_hat is required by {estimator}: fit a reward model first.")
        return self.q_hat


def evaluation_input(
    log: LoggedFeedback, action_dist: np.ndarray, q_hat: np.ndarray | None = None
) -> EvaluationInput:
    """Pair ``log`` with an evaluation distribution.

    ``action_dist`` has shape ``(n_rounds, n_actions, n_positions)`` as in Open Bandit
    Pipeline, or ``(n_actions, n_positions)`` / ``(n_actions,)`` for a policy that is the
    same in every round (broadcast, never copied per round).
    """
    dist = np.asarray(action_dist, dtype=np.float64)
    n, k, p = log.n_rounds, log.n_actions, log.n_positions
    if dist.ndim == 1:
        dist = dist[:, None]
    if dist.ndim == 2:
        if dist.shape[1] == 1 and p > 1:
            dist = np.broadcast_to(dist, (k, p))
        if dist.shape != (k, p):
            raise ValueError(f"action_dist must have shape ({k}, {p}), got {dist.shape}.")
        if np.any(dist < 0) or not np.allclose(dist.sum(axis=0), 1.0, atol=1e-6):
            raise ValueError("action_dist must be non-negative and sum to 1 over actions.")
        pi_position = np.ascontiguousarray(dist.T)[log.positions]
    elif dist.ndim == 3:
        if dist.shape != (n, k, p):
            raise ValueError(f"action_dist must have shape ({n}, {k}, {p}), got {dist.shape}.")
        pi_position = dist[np.arange(n), :, log.positions]
        if np.any(pi_position < 0) or not np.allclose(pi_position.sum(axis=1), 1.0, atol=1e-6):
            raise ValueError("action_dist must be non-negative and sum to 1 over actions.")
    else:
        raise ValueError(f"action_dist must have 1 to 3 dimensions, got {dist.ndim}.")
    if q_hat is not None:
        q_hat = np.asarray(q_hat, dtype=np.float64)
        if q_hat.shape != (n, k):
            raise ValueError(f"q_hat must have shape ({n}, {k}), got {q_hat.shape}.")
    pi_logged = pi_position[np.arange(n), log.actions]
    return EvaluationInput(log, pi_logged, pi_position, q_hat)


def rows_input(
    log: LoggedFeedback, pi_position: np.ndarray, q_hat: np.ndarray | None = None
) -> EvaluationInput:
    """Pair ``log`` with a per-row distribution ``(n_rounds, n_actions)`` at each row's slot
    (for example the allocation of a learning policy before each row)."""
    n, k = log.n_rounds, log.n_actions
    pi = np.asarray(pi_position, dtype=np.float64)
    if pi.shape != (n, k):
        raise ValueError(f"pi_position must have shape ({n}, {k}), got {pi.shape}.")
    if np.any(pi < 0) or not np.allclose(pi.sum(axis=1), 1.0, atol=1e-6):
        raise ValueError("pi_position must be non-negative and sum to 1 over actions.")
    if q_hat is not None:
        q_hat = np.asarray(q_hat, dtype=np.float64)
        if q_hat.shape != (n, k):
            raise ValueError(f"q_hat must have shape ({n}, {k}), got {q_hat.shape}.")
    return EvaluationInput(log, pi[np.arange(n), log.actions], pi, q_hat)


def bootstrap_interval(
    numerators: np.ndarray,
    denominators: np.ndarray | None = None,
    *,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``mean(num)`` or of ``sum(num) / sum(den)``.

    Rounds are resampled with replacement; every replicate is computed with array
    operations, seeded by ``seed``. When the rounds take few distinct values (binary rewards
    and few distinct weights), the replicates draw multinomial counts of those values, which
    is the same resampling at a cost independent of the number of rounds.

    >>> x = np.r_[np.zeros(90), np.ones(10)]
    >>> low, high = bootstrap_interval(x, seed=1)
    >>> bool(low < 0.1 < high), bootstrap_interval(x, seed=1) == (low, high)
    (True, True)
    """
    num = np.asarray(numerators, dtype=np.float64)
    n = num.shape[0]
    b = int(check_scalar(n_bootstrap, "n_bootstrap", kind=int, min_val=1))
    level = float(check_scalar(confidence, "confidence", min_val=0.0, max_val=1.0))
    den = None if denominators is None else np.asarray(denominators, dtype=np.float64)
    grouped = _grouped(num, den)
    if grouped is not None:  # few distinct rounds: resample their counts (same law, faster)
        values, freq = grouped
        counts = np.random.default_rng(seed).multinomial(n, freq / n, size=b).astype(np.float64)
        top = counts @ values[:, 0]
        if den is None:
            stats = top / n
        else:
            bottom = counts @ values[:, 1]
            with np.errstate(invalid="ignore", divide="ignore"):
                stats = np.where(bottom > 0, top / bottom, np.nan)
    elif b * n <= _BOOT_CELLS:
        counts = _resample_counts(n, b, seed)  # shared by every estimator on this log
        top = counts @ num
        if den is None:
            stats = top / n
        else:
            bottom = counts @ den
            with np.errstate(invalid="ignore", divide="ignore"):
                stats = np.where(bottom > 0, top / bottom, np.nan)
    else:
        stats = _resample_blocks(num, den, b, seed)
    tail = (1.0 - level) / 2.0
    low, high = np.nanquantile(stats, [tail, 1.0 - tail])
    return float(low), float(high)


def _grouped(num: np.ndarray, den: np.ndarray | None) -> tuple[np.ndarray, np.ndarray] | None:
    """Distinct rounds ``(values (u, 2), frequencies (u,))`` when there are at most a quarter
    as many as rounds (binary rewards with few distinct weights), else None. Resampling rounds
    is resampling these values with their frequencies."""
    n = num.shape[0]
    if n < 64:
        return None
    key = num if den is None else num + 1j * den  # one sortable key per (num, den) pair
    distinct, freq = np.unique(key, return_counts=True)
    if 4 * distinct.shape[0] > n:
        return None
    values = np.stack([distinct.real, distinct.imag if den is not None else distinct.real], 1)
    return values, freq.astype(np.float64)


@lru_cache(maxsize=1)
def _resample_counts(n: int, b: int, seed: int) -> np.ndarray:
    """``(b, n)`` how often each round appears in each bootstrap replicate (read-only)."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(b, n)) + (np.arange(b) * n)[:, None]
    counts = np.bincount(idx.ravel(), minlength=b * n).reshape(b, n).astype(np.float64)
    counts.flags.writeable = False
    return counts


def _resample_blocks(num: np.ndarray, den: np.ndarray | None, b: int, seed: int) -> np.ndarray:
    """Bootstrap statistics for logs too long to keep the counts: blocks of replicates."""
    n = num.shape[0]
    rng = np.random.default_rng(seed)
    stats = np.empty(b)
    block = max(1, _BOOT_CELLS // max(n, 1))
    for start in range(0, b, block):
        m = min(block, b - start)
        idx = rng.integers(0, n, size=(m, n), dtype=np.int32 if n < 2**31 else np.int64)
        top = num[idx].sum(axis=1)
        if den is None:
            stats[start : start + m] = top / n
        else:
            bottom = den[idx].sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                stats[start : start + m] = np.where(bottom > 0, top / bottom, np.nan)
    return stats


@dataclass(frozen=True, slots=True)
class Terms:
    """Per-round terms of an estimator: the estimate is ``sum(num) / sum(den)``
    (``den`` None: ``mean(num)``); ``weights`` are the importance weights (None for DM)."""

    num: np.ndarray
    den: np.ndarray | None
    weights: np.ndarray | None


D = TypeVar("D")


class Estimator(ABC, Generic[D]):
    """An off-policy estimator; subclasses write :meth:`_terms`.

    Parameters
    ----------
    n_bootstrap
        Bootstrap replicates for the interval.
    confidence
        Level of the interval.
    seed
        Seed of the bootstrap (and of any randomness of the estimator).
    """

    #: Name used in tables.
    name: ClassVar[str] = ""

    def __init__(self, *, n_bootstrap: int = 1000, confidence: float = 0.95, seed: int = 0):
        self.n_bootstrap = int(check_scalar(n_bootstrap, "n_bootstrap", kind=int, min_val=1))
        self.confidence = float(
            check_scalar(confidence, "confidence", min_val=0.0, max_val=1.0, include_min=False)
        )
        self.seed = int(check_scalar(seed, "seed", kind=int, min_val=0))

    def estimate(self, data: D) -> Estimate:
        """Estimate the evaluation policy's mean reward per round, with its interval."""
        terms = self._terms(data)
        if terms.den is None:
            value = float(terms.num.mean())
        else:
            total = float(terms.den.sum())
            value = float(terms.num.sum() / total) if total > 0 else float("nan")
        low, high = bootstrap_interval(
            terms.num,
            terms.den,
            n_bootstrap=self.n_bootstrap,
            confidence=self.confidence,
            seed=self.seed,
        )
        w = terms.weights
        if w is None:
            ess, max_w = float(terms.num.shape[0]), float("nan")
        else:
            sq = float(np.dot(w, w))
            ess = float(w.sum()) ** 2 / sq if sq > 0 else 0.0
            max_w = float(w.max())
        return Estimate(self.name, value, low, high, ess, max_w, int(terms.num.shape[0]))

    @abstractmethod
    def _terms(self, data: D) -> Terms:
        """The per-round terms of this estimator."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n_bootstrap={self.n_bootstrap}, seed={self.seed})"
