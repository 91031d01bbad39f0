"""Off-policy estimators on synthetic logs where the truth is known."""

from __future__ import annotations

import numpy as np
import pytest

from simulations.ope import (
    DM,
    DR,
    DROS,
    IPS,
    SNIPS,
    IndependentIPS,
    LinearRewardModel,
    Replay,
    RewardInteractionIPS,
    SlateInput,
    SwitchDR,
    bootstrap_interval,
    evaluation_input,
    rows_input,
)
from simulations.synthetic_logs import (
    bernoulli_log,
    plackett_luce_probabilities,
    plackett_luce_slates,
)

MEANS = np.array([0.05, 0.10, 0.20, 0.30, 0.50])
LOGGING = np.array([0.40, 0.25, 0.15, 0.12, 0.08])
TARGET = np.array([0.05, 0.05, 0.20, 0.30, 0.40])
TRUTH = float(TARGET @ MEANS)


def test_ips_of_the_logging_policy_is_the_observed_mean_exactly() -> None:
    log = bernoulli_log(MEANS, LOGGING, 5000, seed=1)
    assert log.logging_distribution is not None
    data = rows_input(log, log.logging_distribution[:, :, 0])
    assert IPS().estimate(data).value == pytest.approx(log.rewards.mean(), abs=1e-15)
    assert SNIPS().estimate(data).value == pytest.approx(log.rewards.mean(), abs=1e-15)


@pytest.mark.slow
def test_ips_snips_dr_are_unbiased_over_seeds() -> None:
    """Mean over 300 logs of 2,000 rounds within 3.5 standard errors of the truth; a
    weight of pi/p squared (or unweighted rewards) is off by many standard errors."""
    values: dict[str, list[float]] = {"ips": [], "snips": [], "dr": []}
    for seed in range(300):
        log = bernoulli_log(MEANS, LOGGING, 2000, seed=seed)
        q = LinearRewardModel(seed=seed).fit_predict(log)
        data = evaluation_input(log, TARGET, q)
        for est in (IPS(n_bootstrap=1), SNIPS(n_bootstrap=1), DR(n_bootstrap=1)):
            values[est.name].append(est.estimate(data).value)
    for name, vals in values.items():
        v = np.asarray(vals)
        se = v.std(ddof=1) / np.sqrt(v.size)
        assert abs(v.mean() - TRUTH) < 3.5 * se, (name, v.mean(), TRUTH, se)
        assert se < 0.003


@pytest.mark.slow
def test_bootstrap_intervals_cover_at_about_the_nominal_rate() -> None:
    covered = {"ips": 0, "snips": 0, "dr": 0}
    runs = 200
    for seed in range(runs):
        log = bernoulli_log(MEANS, LOGGING, 2000, seed=1000 + seed)
        q = LinearRewardModel(seed=seed).fit_predict(log)
        data = evaluation_input(log, TARGET, q)
        for est in (
            IPS(n_bootstrap=400, seed=seed),
            SNIPS(n_bootstrap=400, seed=seed),
            DR(n_bootstrap=400, seed=seed),
        ):
            e = est.estimate(data)
            covered[est.name] += e.ci_low <= TRUTH <= e.ci_high
    for name, hits in covered.items():
        assert 0.89 <= hits / runs <= 0.99, (name, hits / runs)


def test_dm_and_dr_variants_on_a_well_specified_model() -> None:
    log = bernoulli_log(MEANS, LOGGING, 20_000, seed=2)
    data = evaluation_input(log, TARGET, LinearRewardModel().fit_predict(log))
    for est in (DM(), DR(), SwitchDR(tau=2.0), DROS(lambda_=5.0)):
        e = est.estimate(data)
        assert abs(e.value - TRUTH) < 0.02, (est.name, e.value)
        assert e.ci_low < e.value < e.ci_high
    switch = SwitchDR(tau=2.0).estimate(data)
    assert switch.max_weight <= 2.0
    assert DM().estimate(data).ess == log.n_rounds


def test_model_based_estimators_need_a_model() -> None:
    data = evaluation_input(bernoulli_log(MEANS, LOGGING, 100, seed=0), TARGET)
    for est in (DM(), DR(), SwitchDR(), DROS()):
        with pytest.raises(ValueError, match="q_hat"):
            est.estimate(data)


def test_replay_of_a_fixed_policy_on_a_uniform_log() -> None:
    uniform = np.full(5, 0.2)
    values = [
        Replay(seed=s).estimate(evaluation_input(bernoulli_log(MEANS, uniform, 5000, s), TARGET))
        for s in range(40)
    ]
    v = np.array([e.value for e in values])
    assert abs(v.mean() - TRUTH) < 3.5 * v.std(ddof=1) / np.sqrt(v.size)
    assert all(900 < e.ess < 1100 for e in values)  # about n / K rounds kept
    with pytest.raises(ValueError, match="uniform"):
        Replay().estimate(evaluation_input(bernoulli_log(MEANS, LOGGING, 100, 0), TARGET))


def test_weights_ess_and_max_weight() -> None:
    log = bernoulli_log(MEANS, LOGGING, 1000, seed=3)
    e = IPS().estimate(evaluation_input(log, TARGET))
    w = TARGET[log.actions] / LOGGING[log.actions]
    assert e.max_weight == pytest.approx(w.max())
    assert e.ess == pytest.approx(w.sum() ** 2 / (w**2).sum())


def test_action_dist_shapes_are_checked() -> None:
    log = bernoulli_log(MEANS, LOGGING, 10, seed=0)
    with pytest.raises(ValueError, match="action_dist"):
        evaluation_input(log, np.ones(4) / 4)
    with pytest.raises(ValueError, match="action_dist"):
        evaluation_input(log, np.ones((10, 5, 1)))
    full = np.broadcast_to(TARGET[None, :, None], (10, 5, 1))
    a = IPS().estimate(evaluation_input(log, full)).value
    assert a == IPS().estimate(evaluation_input(log, TARGET)).value


def test_bootstrap_is_seeded_and_reasonable() -> None:
    x = np.random.default_rng(0).normal(1.0, 1.0, 400)
    assert bootstrap_interval(x, seed=3) == bootstrap_interval(x, seed=3)
    low, high = bootstrap_interval(x, seed=3)
    half = 1.96 * x.std() / np.sqrt(x.size)
    assert abs((high - low) / 2 - half) < 0.2 * half
    big = np.random.default_rng(1).normal(size=40_000)  # the blocked path (no cached counts)
    low, high = bootstrap_interval(big, n_bootstrap=500, seed=0)
    assert low < big.mean() < high


def test_plackett_luce_probabilities_are_consistent() -> None:
    w = np.array([1.0, 2.0, 3.0, 4.0])
    cascade, marginal = plackett_luce_probabilities(w, np.array([[3, 2, 1]]))
    assert cascade[0].tolist() == pytest.approx([0.4, 0.4 * 3 / 6, 0.4 * 3 / 6 * 2 / 3])
    assert np.allclose(marginal.sum(axis=0), 1.0)


@pytest.mark.slow
def test_slate_estimators_are_unbiased_for_their_reward_structures() -> None:
    """Clicks depend on the item and slot only, so both IIPS and RIPS are unbiased."""
    item_means = np.array([0.05, 0.1, 0.2, 0.3, 0.4])
    logging_w = np.ones(5)
    target_w = np.array([0.5, 1.0, 2.0, 4.0, 8.0])
    length = 3
    _, marg_t = plackett_luce_probabilities(target_w, np.zeros((1, length), dtype=np.int64))
    truth = float(sum(marg_t[:, k] @ (item_means * 0.8**k) for k in range(length)))
    iips, rips = [], []
    for seed in range(150):
        log, slates = plackett_luce_slates(logging_w, item_means, length, 1000, seed)
        cascade_t, marg_t = plackett_luce_probabilities(target_w, slates)
        data = SlateInput(log, marg_t[log.actions, log.positions], cascade_t.ravel())
        iips.append(IndependentIPS(n_bootstrap=1).estimate(data).value)
        rips.append(RewardInteractionIPS(n_bootstrap=1).estimate(data).value)
    for vals in (np.array(iips), np.array(rips)):
        assert abs(vals.mean() - truth) < 3.5 * vals.std(ddof=1) / np.sqrt(vals.size)


def test_slate_input_checks() -> None:
    log = bernoulli_log(MEANS, LOGGING, 10, seed=0)
    with pytest.raises(ValueError, match="slates"):
        SlateInput(log, np.full(10, 0.1))
    log2, _ = plackett_luce_slates(np.ones(4), np.full(4, 0.2), 2, 5, seed=0)
    with pytest.raises(ValueError, match="pi_cascade"):
        RewardInteractionIPS().estimate(SlateInput(log2, np.full(10, 0.25)))
