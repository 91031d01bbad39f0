"""Read-side statistics: per-arm summaries and the sample-ratio-mismatch test."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from bandit.inference import expected_loss, probability_best
from bandit.intervals import mean_interval


@dataclass(frozen=True)
class ArmSummary:
    mean: list[float | None]
    low: list[float | None]
    high: list[float | None]
    prob_best: list[float]
    expected_loss: list[float]


@dataclass(frozen=True)
class MeanIntervals:
    """Mean reward per observation and its 95% interval, in reward-definition units; NaN
    where undefined (mean: no observation; interval: fewer than two)."""

    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray


def mean_intervals(
    n: np.ndarray, sums: np.ndarray, sq_sums: np.ndarray, scale: float
) -> MeanIntervals:
    """Means and 95% intervals from counts and sums of normalised rewards (any shape).

    Interval: the normal approximation ``mean ± 1.96 * s / sqrt(n)`` (``s`` the sample
    standard deviation; :func:`bandit.intervals.mean_interval`), clipped to [0, scale].
    """
    n = np.asarray(n, dtype=float)
    sums = np.asarray(sums, dtype=float)
    m = np.divide(sums, n, out=np.zeros_like(sums), where=n >= 1)
    var = np.divide(
        np.asarray(sq_sums, dtype=float) - n * m * m,
        n - 1,
        out=np.zeros_like(sums),
        where=n >= 2,
    )
    low, high = mean_interval(m, np.sqrt(np.maximum(var, 0.0)), n, 0.95, "normal")
    enough = n >= 2
    return MeanIntervals(
        mean=np.where(n >= 1, m * scale, np.nan),
        low=np.where(enough, np.maximum(0.0, low) * scale, np.nan),
        high=np.where(enough, np.minimum(1.0, high) * scale, np.nan),
    )


def posteriors(n: np.ndarray, sums: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Beta posterior parameters ``(1 + sum_i, 1 + n_i - sum_i)`` of rewards in [0, 1]."""
    n = np.asarray(n, dtype=float)
    sums = np.asarray(sums, dtype=float)
    return 1.0 + np.clip(sums, 0, None), 1.0 + np.clip(n - sums, 0, None)


def prob_best(n: np.ndarray, sums: np.ndarray) -> list[float]:
    """Each arm's probability of being best under :func:`posteriors` (exact quadrature)."""
    return [float(x) for x in probability_best(*posteriors(n, sums))]


def _or_none(x: float) -> float | None:
    return None if np.isnan(x) else float(x)


def arm_summary(n: np.ndarray, sums: np.ndarray, sq_sums: np.ndarray, scale: float) -> ArmSummary:
    """Mean reward per observation with a 95% interval, P(best) and expected loss.

    ``n``, ``sums``, ``sq_sums`` are per-arm counts and sums of the *normalised* rewards in
    [0, 1]; results are given back in reward-definition units (times ``scale``).

    Interval: :func:`mean_intervals`; None below two observations.
    P(best) and expected loss ``E[max_j θ_j - θ_i]`` are exact (quadrature, no random draws:
    :mod:`bandit.inference`) for the posteriors ``θ_i ~ Beta(1 + sum_i, 1 + n_i - sum_i)``
    (the conjugate posterior for rewards in [0, 1], used as an approximation for fractional
    rewards).
    """
    mi = mean_intervals(n, sums, sq_sums, scale)
    a, b = posteriors(n, sums)
    loss = expected_loss(a, b) * scale
    return ArmSummary(
        [_or_none(x) for x in mi.mean],
        [_or_none(x) for x in mi.low],
        [_or_none(x) for x in mi.high],
        prob_best(n, sums),
        [float(x) for x in loss],
    )


@dataclass(frozen=True)
class SRMResult:
    observed: np.ndarray
    expected: np.ndarray
    statistic: float
    dof: int
    p_value: float


@dataclass(frozen=True)
class SRMSums:
    r"""The sums behind the sample-ratio test, over groups of decisions drawn from one
    allocation each (a policy version): observed counts, :math:`E = \sum_v n_v p_v`,
    :math:`\Sigma = \sum_v n_v (\mathrm{diag}(p_v) - p_v p_v^T)`, and whether an arm was
    observed where its probability was 0. Sums add up, so the past can be summed once and
    kept (:mod:`service.store.sealed_counts`)."""

    observed: np.ndarray
    expected: np.ndarray
    cov: np.ndarray
    impossible: bool = False

    @classmethod
    def zeros(cls, n_arms: int) -> SRMSums:
        return cls(np.zeros(n_arms), np.zeros(n_arms), np.zeros((n_arms, n_arms)))

    @classmethod
    def of(cls, counts: np.ndarray, probs: np.ndarray) -> SRMSums:
        """The sums of groups: ``counts[g]`` decisions per arm drawn from ``probs[g]``
        (both of shape (groups, arms))."""
        c = np.asarray(counts, dtype=float).reshape(-1, np.shape(probs)[-1])
        p = np.asarray(probs, dtype=float).reshape(c.shape)
        total = c.sum(axis=1)
        expected = total @ p
        cov = np.diag(expected) - (p * total[:, None]).T @ p
        return cls(c.sum(axis=0), expected, cov, bool(np.any((p <= 0) & (c > 0))))

    def padded(self, n_arms: int) -> SRMSums:
        """The sums over ``n_arms`` arms (arms added since had probability 0: zeros)."""
        m = len(self.observed)
        if m >= n_arms:
            return self
        grow = n_arms - m
        return SRMSums(
            np.pad(self.observed, (0, grow)),
            np.pad(self.expected, (0, grow)),
            np.pad(self.cov, ((0, grow), (0, grow))),
            self.impossible,
        )

    def __add__(self, other: SRMSums) -> SRMSums:
        n = max(len(self.observed), len(other.observed))
        a, b = self.padded(n), other.padded(n)
        return SRMSums(
            a.observed + b.observed,
            a.expected + b.expected,
            a.cov + b.cov,
            a.impossible or b.impossible,
        )


def sample_ratio_test(groups: Sequence[tuple[np.ndarray, np.ndarray]], n_arms: int) -> SRMResult:
    """Test observed arm counts against the logged probabilities.

    ``groups`` holds, per policy version, the arm counts of its decisions and the allocation
    they were drawn from (see :func:`srm_test`)."""
    if not groups:
        return srm_test(SRMSums.zeros(n_arms))
    counts = np.array([np.asarray(c, dtype=float) for c, _ in groups])
    probs = np.array([np.asarray(p, dtype=float) for _, p in groups])
    return srm_test(SRMSums.of(counts, probs).padded(n_arms))


def srm_test(sums: SRMSums) -> SRMResult:
    r"""The sample-ratio test of the decisions behind ``sums``.

    The counts are a sum of independent multinomials, so ``(o - E)^T Σ^+ (o - E)`` is
    asymptotically χ² with ``rank(Σ)`` degrees of freedom. With a single version this is
    Pearson's χ² goodness-of-fit test. An arm observed where its probability was 0 gives
    p = 0.
    """
    observed, expected, cov = sums.observed, sums.expected, sums.cov
    n_arms = len(observed)
    if observed.sum() == 0:
        return SRMResult(observed, expected, 0.0, 0, 1.0)
    if sums.impossible:
        return SRMResult(observed, expected, float("inf"), max(n_arms - 1, 1), 0.0)
    diff = observed - expected
    dof = int(np.linalg.matrix_rank(cov, tol=1e-9 * max(1.0, float(np.abs(cov).max()))))
    if dof == 0:
        return SRMResult(observed, expected, 0.0, 0, 1.0)
    stat = float(diff @ np.linalg.pinv(cov, rcond=1e-10, hermitian=True) @ diff)
    p_value = float(sps.chi2.sf(stat, dof))
    return SRMResult(observed, expected, stat, dof, p_value)
