"""Final decision counts of the past, kept per process: equal to counting every decision."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from sqlalchemy import func, select

from service import stats
from service.models import Decision, PolicyUpdate
from service.store import insights, sealed_counts
from service.store.common import load
from service.store.sealed_counts import SealedCounts


def _reward_all(api, decisions) -> None:
    items = [{"decision_id": d["decision_id"], "kind": "click"} for d in decisions]
    r = api.post("/v1/experiments/exp/rewards/batch", {"rewards": items}, scope="write")
    assert r.status_code == 200, r.text


def _direct(session, n: int):
    exp, _ = load(session, "exp")
    return SealedCounts().versions(session, exp.id, n)  # a new cache: everything read


def _srm(session, got, exp_id: int, n: int) -> stats.SRMSums:
    """The sample-ratio sums of every version: kept (sealed) plus recent."""
    return SealedCounts().srm(session, exp_id, got, n)


def _reference_srm(session, exp_id: int, n: int) -> stats.SRMResult:
    """The test computed from scratch: every version's counts against its allocation."""
    counts: dict[int, np.ndarray] = {}
    for v, arm, k in session.execute(
        select(Decision.policy_version, Decision.arm, func.count())
        .where(Decision.experiment_id == exp_id, ~Decision.fallback)
        .group_by(Decision.policy_version, Decision.arm)
    ):
        counts.setdefault(v, np.zeros(n))[arm] += k
    alloc = dict(
        session.execute(
            select(PolicyUpdate.seq, PolicyUpdate.allocation).where(
                PolicyUpdate.experiment_id == exp_id
            )
        ).all()
    )
    groups = [(c, np.pad(alloc[v], (0, n - len(alloc[v])))) for v, c in counts.items()]
    return stats.sample_ratio_test(groups, n)


def test_kept_counts_equal_a_full_count_as_versions_seal(api, session_factory, monkeypatch):
    monkeypatch.setattr(sealed_counts, "SEAL_S", 0.0)  # every past update seals at once
    api.experiment(reward_window_s=None)
    kept = SealedCounts()
    for round_ in range(4):
        made = [api.decide(unit=f"r{round_}-{i}") for i in range(15)]
        _reward_all(api, made[::2])  # one policy update: a new version
        if round_ == 2:
            api.post("/v1/experiments/exp/pause")  # fallback answers from now on
        with session_factory() as session:
            exp, _ = load(session, "exp")
            got = kept.versions(session, exp.id, 3)
            want = _direct(session, 3)
            got_srm = kept.srm(session, exp.id, got, 3)  # recent allocations: kept too
            want_srm = _srm(session, want, exp.id, 3)
            reference = _reference_srm(session, exp.id, 3)
        assert got.fallback == want.fallback
        np.testing.assert_array_equal(got.per_arm, want.per_arm)
        for field in ("observed", "expected", "cov"):
            np.testing.assert_allclose(getattr(got_srm, field), getattr(want_srm, field))
        result = stats.srm_test(got_srm)
        np.testing.assert_allclose(result.expected, reference.expected)
        assert result.statistic == pytest.approx(reference.statistic)
        assert result.p_value == pytest.approx(reference.p_value)
    assert kept._kept[exp.id].below > 0  # later reads skipped the sealed versions
    assert want.fallback == 15
    # the counts behind /stats and /health are those of the cache
    with session_factory() as session:
        made_counts = insights.decision_counts(session, exp.id, 3, kept)
    assert int(made_counts.per_arm.sum()) + made_counts.fallback == 60


def test_an_added_arm_pads_the_kept_counts(api, session_factory, monkeypatch):
    monkeypatch.setattr(sealed_counts, "SEAL_S", 0.0)
    api.experiment(policy="ucb1", reward_window_s=None)
    kept = SealedCounts()
    _reward_all(api, [api.decide(unit=f"u{i}") for i in range(9)])
    with session_factory() as session:
        exp, _ = load(session, "exp")
        kept.versions(session, exp.id, 3)
    assert api.post("/v1/experiments/exp/arms", {"name": "d"}).status_code == 201
    _reward_all(api, [api.decide(unit=f"v{i}") for i in range(9)])
    with session_factory() as session:
        got = kept.versions(session, exp.id, 4)
        want = _direct(session, 4)
        got_srm = _srm(session, got, exp.id, 4)
        reference = _reference_srm(session, exp.id, 4)
    assert len(got.per_arm) == 4
    np.testing.assert_array_equal(got.per_arm, want.per_arm)
    assert got.per_arm.sum() == 18
    np.testing.assert_allclose(got_srm.observed, reference.observed)
    np.testing.assert_allclose(got_srm.expected, reference.expected)
    assert stats.srm_test(got_srm).p_value == pytest.approx(reference.p_value)


def test_days_are_counted_once_complete(api, session_factory, monkeypatch):
    api.experiment(reward_window_s=None)
    for i in range(5):
        api.decide(unit=f"u{i}")
    kept = SealedCounts()
    today = dt.datetime.now(dt.UTC).date()
    first = today - dt.timedelta(days=3)
    with session_factory() as session:
        exp, _ = load(session, "exp")
        assert kept.days(session, exp.id, first, today) == [0, 0, 0, 5]
    assert kept._kept[exp.id].days_before == today  # the three past days: complete
    api.decide(unit="later")
    with session_factory() as session:
        assert kept.days(session, exp.id, first, today) == [0, 0, 0, 6]


def test_recent_versions_allocations_are_read_once(api, session_factory, monkeypatch):
    """Nothing seals (the default five minutes): every version is recent; its allocation is
    read once per process and the test equals one computed from scratch at every step."""
    api.experiment(reward_window_s=None)
    kept = SealedCounts()
    read: list[int] = []
    fetch = sealed_counts._allocations
    monkeypatch.setattr(
        sealed_counts,
        "_allocations",
        lambda s, e, versions: read.extend(versions) or fetch(s, e, versions),
    )
    for round_ in range(3):
        made = [api.decide(unit=f"r{round_}-{i}") for i in range(12)]
        _reward_all(api, made[::3])
        with session_factory() as session:
            exp, _ = load(session, "exp")
            got = kept.versions(session, exp.id, 3)
            result = stats.srm_test(kept.srm(session, exp.id, got, 3))
            reference = _reference_srm(session, exp.id, 3)
        assert kept._kept[exp.id].below == 0 and got.recent_from == 0
        np.testing.assert_allclose(result.expected, reference.expected)
        assert result.p_value == pytest.approx(reference.p_value)
    assert sorted(read) == [0, 1, 2]  # each version's allocation, once
