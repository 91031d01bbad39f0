"""A/A check (seeded): with identical arms the SRM p-values are uniform and P(best) calibrated.

Each check also runs a broken variant on the same simulated data, to show that the tolerance
is tight enough to catch it.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from service.aa import AAConfig, prob_best, run_aa
from service.stats import sample_ratio_test

KS_CRITICAL_1PCT = 1.628  # sqrt(n) * D above this rejects uniformity at the 1% level


@pytest.fixture(scope="module")
def adaptive():
    """Thompson sampling on 3 identical arms: allocations move between policy versions."""
    return run_aa(AAConfig(policy="thompson", decisions=600, batch=150, replicates=100, seed=11))


def _ks_scaled(p_values: np.ndarray) -> float:
    return float(np.sqrt(len(p_values)) * sps.kstest(p_values, "uniform").statistic)


def test_srm_p_values_are_uniform_under_adaptive_allocation(adaptive) -> None:
    p = adaptive.srm_p_values
    assert len(p) == 100
    assert _ks_scaled(p) < KS_CRITICAL_1PCT
    assert adaptive.ks_uniform()[1] > 0.01
    assert 0.0 <= adaptive.srm_alarm_rate(0.05) <= 0.12  # 0.05 + 3 binomial sd
    # the allocations did move: the test is not a single-version Pearson test in disguise
    spread = [np.ptp([g[1] for g in r.groups], axis=0).max() for r in adaptive.replicates]
    assert np.median(spread) > 0.1


def test_broken_srm_tests_fail_the_same_check(adaptive) -> None:
    # ignoring the logged allocations (testing against an equal split)
    equal_split = np.array(
        [sps.chisquare(r.pulls, np.full(3, r.pulls.sum() / 3)).pvalue for r in adaptive.replicates]
    )
    assert _ks_scaled(equal_split) > KS_CRITICAL_1PCT
    # pairing each version's counts with the previous version's allocation
    shifted = np.array(
        [
            sample_ratio_test(
                [(g[0], prev[1]) for g, prev in zip(r.groups[1:], r.groups[:-1], strict=True)], 3
            ).p_value
            for r in adaptive.replicates
        ]
    )
    assert _ks_scaled(shifted) > KS_CRITICAL_1PCT


@pytest.mark.slow
def test_false_winner_rate_of_a_uniform_split_matches_the_normal_approximation() -> None:
    # Two identical arms, fixed 50/50 split: P(best) >= 0.95 for either arm when the z-score
    # of the difference passes 1.645 in absolute value, i.e. about 10% of the time.
    result = run_aa(
        AAConfig(
            policy="epsilon-greedy",
            params={"epsilon": 1.0},
            n_arms=2,
            rate=0.1,
            decisions=1000,
            batch=1000,
            replicates=200,
            seed=5,
        )
    )
    assert result.replicates[0].groups[0][1].tolist() == [0.5, 0.5]
    assert 0.04 <= result.false_winner_rate <= 0.17  # 0.10 +- 3 binomial sd
    low, high = result.false_winner_interval()
    assert low <= result.false_winner_rate <= high
    assert _ks_scaled(result.srm_p_values) < KS_CRITICAL_1PCT
    # P(best) from the posterior matches the normal approximation replicate by replicate
    for r in result.replicates[:20]:
        m = (r.clicks + 1) / (r.pulls + 2)
        se = np.sqrt((m * (1 - m) / (r.pulls + 3)).sum())
        approx = sps.norm.cdf((m[0] - m[1]) / se)
        assert r.prob_best[0] == pytest.approx(approx, abs=0.02)


def test_prob_best_is_the_exact_beta_posterior_probability() -> None:
    pulls, clicks = np.array([200, 180, 220]), np.array([12, 15, 9])
    p = prob_best(pulls, clicks)
    a, b = 1 + clicks, 1 + pulls - clicks
    grid = np.linspace(0, 1, 200_001)
    dens = [sps.beta.pdf(grid, a[i], b[i]) for i in range(3)]
    cdfs = [sps.beta.cdf(grid, a[i], b[i]) for i in range(3)]
    exact = [
        np.trapezoid(dens[i] * np.prod([cdfs[j] for j in range(3) if j != i], axis=0), grid)
        for i in range(3)
    ]
    np.testing.assert_allclose(p, exact, atol=1e-4)


def test_config_is_validated() -> None:
    with pytest.raises(ValueError, match="n_arms must be at least 2"):
        AAConfig(n_arms=1)
    with pytest.raises(ValueError, match="rate must lie in"):
        AAConfig(rate=1.5)
    with pytest.raises(ValueError, match="threshold must lie in"):
        AAConfig(threshold=1.0)
