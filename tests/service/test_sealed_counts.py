"""Final decision counts of the past, kept per process: equal to counting every decision."""

from __future__ import annotations

import datetime as dt

import numpy as np

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
        assert got.fallback == want.fallback
        assert got.by_version.keys() == want.by_version.keys()
        for v, c in want.by_version.items():
            np.testing.assert_array_equal(got.by_version[v], c)
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
    assert all(len(c) == 4 for c in got.by_version.values())
    total = sum(c for c in got.by_version.values())
    np.testing.assert_array_equal(total, sum(c for c in want.by_version.values()))


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
