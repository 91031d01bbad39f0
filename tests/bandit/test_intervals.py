"""The shared mean interval: Student t and normal."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from bandit.intervals import mean_interval


def test_student_t_matches_scipy():
    x = np.array([1.0, 2.5, 2.0, 4.0, 3.1])
    low, high = mean_interval(x.mean(), x.std(ddof=1), x.size, 0.9, "t")
    ref = stats.t.interval(0.9, df=x.size - 1, loc=x.mean(), scale=stats.sem(x))
    np.testing.assert_allclose([low, high], ref, rtol=1e-12)


def test_normal_is_the_z_interval_and_vectorised():
    mean = np.array([0.1, 0.5])
    std = np.array([0.3, 0.5])
    n = np.array([100, 400])
    low, high = mean_interval(mean, std, n, 0.95, "normal")
    half = 1.959963984540054 * std / np.sqrt(n)
    np.testing.assert_allclose(low, mean - half, rtol=1e-12)
    np.testing.assert_allclose(high, mean + half, rtol=1e-12)


def test_collapses_below_two_observations():
    low, high = mean_interval([0.4, 0.2], [1.0, 1.0], [1, 0], distribution="normal")
    assert low.tolist() == [0.4, 0.2] and high.tolist() == [0.4, 0.2]


def test_t_coverage_with_a_fixed_seed():
    rng = np.random.default_rng(3)
    x = rng.normal(1.0, 2.0, size=(4000, 5))
    low, high = mean_interval(x.mean(axis=1), x.std(axis=1, ddof=1), 5, 0.95, "t")
    coverage = np.mean((low <= 1.0) & (high >= 1.0))
    assert abs(coverage - 0.95) < 0.015  # a z quantile with 5 samples would cover ~0.88


def test_bad_input_names_the_field():
    with pytest.raises(ValueError, match="confidence"):
        mean_interval(0.0, 1.0, 3, confidence=1.5)
    with pytest.raises(ValueError, match="distribution"):
        mean_interval(0.0, 1.0, 3, distribution="cauchy")  # type: ignore[arg-type]
