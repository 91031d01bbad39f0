"""Read-side statistics: per-arm summaries and the sample-ratio-mismatch test."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

Z95 = 1.959963984540054


@dataclass(frozen=True)
class ArmSummary:
    mean: list[float | None]
    low: list[float | None]
    high: list[float | None]
    prob_best: list[float]
    expected_loss: list[float]


def arm_summary(
    n: np.ndarray,
    sums: np.ndarray,
    sq_sums: np.ndarray,
    scale: float,
    seed: int = 0,
    draws: int = 20_000,
) -> ArmSummary:
    """Mean reward per observation with a 95% interval, P(best) and expected loss.

    ``n``, ``sums``, ``sq_sums`` are per-arm counts and sums of the *normalised* rewards in
    [0, 1]; results are given back in reward-definition units (times ``scale``).

    Interval: the normal approximation ``mean ± 1.96 * s / sqrt(n)`` (``s`` the sample
    standard deviation), clipped to [0, scale]; None below two observations.
    P(best) and expected loss ``E[max_j θ_j - θ_i]`` come from ``draws`` Monte-Carlo draws of
    the posterior ``θ_i ~ Beta(1 + sum_i, 1 + n_i - sum_i)`` (the conjugate posterior for
    rewards in [0, 1], used as an approximation for fractional rewards), seeded for
    reproducible answers.
    """
    k = len(n)
    mean: list[float | None] = []
    low: list[float | None] = []
    high: list[float | None] = []
    for i in range(k):
        if n[i] < 1:
            mean.append(None)
            low.append(None)
            high.append(None)
            continue
        m = sums[i] / n[i]
        mean.append(float(m * scale))
        if n[i] < 2:
            low.append(None)
            high.append(None)
            continue
        var = max(0.0, (sq_sums[i] - n[i] * m * m) / (n[i] - 1))
        half = Z95 * np.sqrt(var / n[i])
        low.append(float(max(0.0, m - half) * scale))
        high.append(float(min(1.0, m + half) * scale))
    rng = np.random.default_rng(seed)
    a = 1.0 + np.clip(sums, 0, None)
    b = 1.0 + np.clip(n - sums, 0, None)
    theta = rng.beta(a, b, size=(draws, k))
    best = theta.argmax(axis=1)
    prob_best = np.bincount(best, minlength=k) / draws
    loss = (theta.max(axis=1, keepdims=True) - theta).mean(axis=0) * scale
    return ArmSummary(mean, low, high, [float(x) for x in prob_best], [float(x) for x in loss])


@dataclass(frozen=True)
class SRMResult:
    observed: np.ndarray
    expected: np.ndarray
    statistic: float
    dof: int
    p_value: float


def sample_ratio_test(groups: Sequence[tuple[np.ndarray, np.ndarray]], n_arms: int) -> SRMResult:
    """Test observed arm counts against the logged probabilities.

    ``groups`` holds, per policy version, the arm counts of its decisions and the allocation
    they were drawn from. The counts are a sum of independent multinomials, so

    .. math:: E[o] = \\sum_v n_v p_v, \\quad
              \\Sigma = \\sum_v n_v (\\mathrm{diag}(p_v) - p_v p_v^T)

    and ``(o - E)^T Σ^+ (o - E)`` is asymptotically χ² with ``rank(Σ)`` degrees of freedom.
    With a single version this is Pearson's χ² goodness-of-fit test. An arm observed where
    its probability was 0 gives p = 0.
    """
    observed = np.zeros(n_arms)
    expected = np.zeros(n_arms)
    cov = np.zeros((n_arms, n_arms))
    impossible = False
    for counts, p in groups:
        c = np.asarray(counts, dtype=float)
        total = c.sum()
        observed += c
        expected += total * p
        cov += total * (np.diag(p) - np.outer(p, p))
        impossible = impossible or bool(np.any((p <= 0) & (c > 0)))
    if observed.sum() == 0:
        return SRMResult(observed, expected, 0.0, 0, 1.0)
    if impossible:
        return SRMResult(observed, expected, float("inf"), max(n_arms - 1, 1), 0.0)
    diff = observed - expected
    dof = int(np.linalg.matrix_rank(cov, tol=1e-9 * max(1.0, float(np.abs(cov).max()))))
    if dof == 0:
        return SRMResult(observed, expected, 0.0, 0, 1.0)
    stat = float(diff @ np.linalg.pinv(cov, rcond=1e-10, hermitian=True) @ diff)
    p_value = float(sps.chi2.sf(stat, dof))
    return SRMResult(observed, expected, stat, dof, p_value)
