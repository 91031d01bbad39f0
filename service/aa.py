"""A/A check: an experiment whose arms are identical, simulated many times.

With identical arms nothing should be found. Each replicate runs the service's decision path
in memory: a :mod:`bandit` policy gives an allocation (one per policy version), each decision
draws its arm from it with :func:`service.policies.draw` and a fresh seed, every decision
gets a click with the same probability ``rate`` whatever its arm, and the policy learns the
clicks in batches of ``batch`` decisions (each batch starts a new policy version, as learned
rewards do in the service). At the end of a replicate:

* the sample-ratio test of the health route (:func:`service.stats.sample_ratio_test`, on
  the per-version arm counts and allocations) gives a p-value. The arms were drawn from the
  logged allocations, so these p-values must be uniform on [0, 1]: checked with a
  Kolmogorov-Smirnov test, and by the share of false alarms at 0.05 and at the health
  route's ``1e-3``;
* the probability that each arm is best, under the Beta(1 + clicks, 1 + misses) posterior
  the statistics route uses, computed exactly by ``bandit``'s Thompson allocation (quadrature);
  a replicate whose best arm reaches ``threshold`` declares a *false winner*. No threshold
  is defined elsewhere in the code, so 0.95 is the default.

``benchmarks/aa_check.py`` runs it at size and prints the table; ``tests/service/test_aa.py``
runs a small seeded version.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats as sps

from service.policies import draw
from service.stats import sample_ratio_test

__all__ = ["HEALTH_SRM_ALPHA", "AAConfig", "AAReplicate", "AAResult", "prob_best", "run_aa"]

#: p-value under which ``GET /v1/experiments/{key}/health`` reports a sample-ratio mismatch.
HEALTH_SRM_ALPHA = 1e-3


@dataclass(frozen=True)
class AAConfig:
    """One A/A experiment design, replicated ``replicates`` times."""

    policy: str = "thompson"
    params: Mapping[str, Any] = field(default_factory=dict)
    n_arms: int = 3
    rate: float = 0.05
    decisions: int = 4000
    batch: int = 200
    replicates: int = 500
    threshold: float = 0.95
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("n_arms", "decisions", "batch", "replicates"):
            if int(getattr(self, name)) < (2 if name == "n_arms" else 1):
                raise ValueError(f"{name} must be at least {2 if name == 'n_arms' else 1}.")
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"rate must lie in [0, 1], got {self.rate}.")
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must lie in (0, 1), got {self.threshold}.")


@dataclass(frozen=True)
class AAReplicate:
    """One simulated A/A experiment.

    ``groups`` holds, per policy version, the arm counts of its decisions and the allocation
    they were drawn from (what the health route feeds to the sample-ratio test).
    """

    groups: tuple[tuple[np.ndarray, np.ndarray], ...]
    pulls: np.ndarray
    clicks: np.ndarray
    srm_p_value: float
    prob_best: np.ndarray


@dataclass(frozen=True)
class AAResult:
    """All replicates of one :class:`AAConfig`, with the calibration summaries."""

    config: AAConfig
    replicates: tuple[AAReplicate, ...]

    @property
    def srm_p_values(self) -> np.ndarray:
        return np.array([r.srm_p_value for r in self.replicates])

    def ks_uniform(self) -> tuple[float, float]:
        """Kolmogorov-Smirnov statistic and p-value of the SRM p-values against U(0, 1)."""
        res = sps.kstest(self.srm_p_values, "uniform")
        return float(res.statistic), float(res.pvalue)

    def srm_alarm_rate(self, alpha: float) -> float:
        """Share of replicates whose SRM p-value is below ``alpha`` (should be ``alpha``)."""
        return float(np.mean(self.srm_p_values < alpha))

    @property
    def false_winners(self) -> int:
        """Replicates in which some arm's probability of being best reached the threshold."""
        return sum(float(r.prob_best.max()) >= self.config.threshold for r in self.replicates)

    @property
    def false_winner_rate(self) -> float:
        return self.false_winners / len(self.replicates)

    def false_winner_interval(self) -> tuple[float, float]:
        """95% Wilson interval of the false-winner rate."""
        ci = sps.binomtest(self.false_winners, len(self.replicates)).proportion_ci(
            0.95, method="wilson"
        )
        return float(ci.low), float(ci.high)

    def summary(self) -> dict[str, Any]:
        """The figures the benchmark prints and writes (JSON-safe)."""
        ks, ks_p = self.ks_uniform()
        low, high = self.false_winner_interval()
        cfg = self.config
        return {
            "policy": cfg.policy,
            "params": dict(cfg.params),
            "n_arms": cfg.n_arms,
            "rate": cfg.rate,
            "decisions": cfg.decisions,
            "batch": cfg.batch,
            "versions": math.ceil(cfg.decisions / cfg.batch),
            "replicates": len(self.replicates),
            "ks_statistic": ks,
            "ks_p_value": ks_p,
            "srm_alarm_rate_0.05": self.srm_alarm_rate(0.05),
            "srm_alarm_rate_health": self.srm_alarm_rate(HEALTH_SRM_ALPHA),
            "threshold": cfg.threshold,
            "false_winner_rate": self.false_winner_rate,
            "false_winner_ci95": [low, high],
        }


def prob_best(pulls: np.ndarray, clicks: np.ndarray) -> np.ndarray:
    """P(arm is best) under independent Beta(1 + clicks, 1 + pulls - clicks) posteriors.

    Computed by :func:`bandit.inference.probability_best` (exact quadrature, on the 4,096-point
    grid that Thompson sampling's own allocation uses).

    >>> prob_best(np.array([100, 100]), np.array([10, 10])).round(3).tolist()
    [0.5, 0.5]
    """
    from bandit.inference import probability_best

    pulls = np.asarray(pulls, dtype=float)
    clicks = np.asarray(clicks, dtype=float)
    return probability_best(1.0 + clicks, 1.0 + pulls - clicks, points=4096)


def _replicate(config: AAConfig, seed: np.random.SeedSequence) -> AAReplicate:
    from bandit import make_policy

    policy_seed, stream = seed.spawn(2)
    rng = np.random.default_rng(stream)
    policy = make_policy(
        config.policy,
        n_arms=config.n_arms,
        seed=int(policy_seed.generate_state(1)[0]),
        **dict(config.params),
    )
    groups = []
    pulls = np.zeros(config.n_arms, dtype=np.int64)
    clicks = np.zeros(config.n_arms, dtype=np.int64)
    for start in range(0, config.decisions, config.batch):
        n = min(config.batch, config.decisions - start)
        allocation = [float(p) for p in policy.allocation()]
        seeds = rng.integers(0, 2**63, size=n, dtype=np.int64).tolist()
        arms = np.array([draw(allocation, s) for s in seeds], dtype=np.int64)
        rewards = (rng.random(n) < config.rate).astype(np.float64)
        counts = np.bincount(arms, minlength=config.n_arms)
        groups.append((counts, np.array(allocation)))
        pulls += counts
        clicks += np.bincount(arms, weights=rewards, minlength=config.n_arms).astype(np.int64)
        policy.update_batch(arms, rewards)
    srm = sample_ratio_test(groups, config.n_arms)
    return AAReplicate(tuple(groups), pulls, clicks, srm.p_value, prob_best(pulls, clicks))


def run_aa(config: AAConfig) -> AAResult:
    """Simulate ``config.replicates`` A/A experiments (seeded by ``config.seed``)."""
    seeds = np.random.SeedSequence(config.seed).spawn(config.replicates)
    return AAResult(config, tuple(_replicate(config, s) for s in seeds))
