"""Dashboard time series: pre-aggregated ``arm_series`` rows, the charts' data and CSV.

The charts must show the numbers of ``/stats`` (last point) and of the log (every point),
the rows written live must be those the rebuild and the migration's backfill compute, and
a page reads a bounded number of points.
"""

from __future__ import annotations

import csv
import io
import json
import re

import numpy as np
import pytest
from sqlalchemy import func, select, update

from service.db import downgrade, make_engine, make_sessionmaker, upgrade
from service.models import ArmSeries, Reward
from service.store import audit, series
from service.store import dashboard as views
from tests.service.test_dashboard import drive, login

DATA = re.compile(r'<script id="chart-data" type="application/json">(.*?)</script>', re.S)


def chart_of(api) -> dict:
    login(api.client, api.keys["read"])
    html = api.client.get("/dashboard/experiments/exp").text
    for div in ("chart-rate", "chart-best", "chart-weights", "chart-traffic"):
        assert f'id="{div}"' in html
    m = DATA.search(html)
    assert m is not None
    return json.loads(m.group(1))


def test_charts_end_at_the_api_stats(api, session_factory):
    drive(api, session_factory)
    chart = chart_of(api)
    stats = api.get("/v1/experiments/exp/stats").json()
    health = api.get("/v1/experiments/exp/health").json()
    version = stats["policy_version"]
    assert chart["versions"] == list(range(version + 1))
    assert chart["best_versions"][-1] == version
    for j, a in enumerate(stats["arms"]):
        assert chart["weights"][-1][j] == a["weight"]
        assert chart["observations"][-1][j] == a["observations"]
        assert chart["mean"][-1][j] == a["mean_reward"]
        assert chart["low"][-1][j] == a["ci95_low"]
        assert chart["high"][-1][j] == a["ci95_high"]
        assert chart["prob_best"][-1][j] == a["prob_best"]
        col = [row[j] for row in chart["observations"]]
        assert col == sorted(col) and col[0] == 0
    assert sum(chart["daily_decisions"]) == health["decisions"] + health["fallback_decisions"]
    assert len(chart["days"]) == len(chart["daily_decisions"]) >= 1


def test_every_point_equals_the_log(api, session_factory):
    """Each point's counts are the learned observations up to that update, and its stored
    probability of being best is stats' function of those counts."""
    from service import stats

    drive(api, session_factory)
    chart = chart_of(api)
    with session_factory() as session:
        for t, seq in enumerate(chart["versions"]):
            counts = dict(
                session.execute(
                    select(Reward.arm, func.count())
                    .where(Reward.learned, Reward.update_seq <= seq)
                    .group_by(Reward.arm)
                ).all()
            )
            assert chart["observations"][t] == [counts.get(j, 0) for j in range(3)]
        rows = series.stored(session, 1)
    by_seq = {}
    for r in rows:
        by_seq.setdefault(r.seq, []).append(r)
    for t, seq in enumerate(chart["best_versions"][:-1]):
        n = np.array([r.n_learned for r in by_seq[seq]], dtype=float)
        s = np.array([r.reward_sum for r in by_seq[seq]])
        assert chart["prob_best"][t] == stats.prob_best(n, s)
        assert sum(chart["prob_best"][t]) == pytest.approx(1.0)


def test_series_csv_matches_the_chart(api, session_factory):
    drive(api, session_factory)
    chart = chart_of(api)
    r = api.client.get("/dashboard/experiments/exp/series.csv")
    assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == len(chart["versions"]) * 3
    last = rows[-3:]
    for j, row in enumerate(last):
        assert row["arm"] == chart["arms"][j]
        assert int(row["policy_version"]) == chart["versions"][-1]
        assert float(row["mean_reward"]) == chart["mean"][-1][j]
        assert float(row["prob_best"]) == chart["prob_best"][-1][j]
        assert float(row["weight"]) == chart["weights"][-1][j]
    api.client.cookies.clear()
    assert api.client.get("/dashboard/experiments/exp/series.csv").status_code == 401


def test_points_are_bounded(api, session_factory):
    drive(api, session_factory, n=200)  # 11 updates
    with session_factory() as session:
        from service.store import insights

        st = insights.experiment_stats(session, "exp")
        ts = views.time_series(session, "exp", st, max_points=4)
    assert len(ts.versions) == 4 and ts.versions[0] == 0 and ts.versions[-1] == st.policy_version
    assert len(ts.best_versions) <= 4 and ts.best_versions[-1] == st.policy_version


def test_prob_best_schedule():
    kept = [s for s in range(0, 12_001) if series.keeps_prob_best(s)]
    assert kept[:3] == [1, 2, 3] and 99 in kept and 105 not in kept and 110 in kept
    assert 1_050 not in kept and 1_100 in kept and 12_000 in kept
    for last in (0, 1, 99, 100, 999, 1_000, 12_000):
        assert series.prob_best_seqs(last) == [s for s in kept if s <= last]


def test_rebuild_regenerates_and_repairs_the_series(api, session_factory):
    drive(api, session_factory)
    with session_factory() as session:
        live = series.stored(session, 1)
        assert live and audit.rebuild(session, "exp").equal
        session.execute(update(ArmSeries).where(ArmSeries.seq == 1).values(reward_sum=42.0))
        session.commit()
        bad = audit.rebuild(session, "exp")
        assert not bad.equal and bad.series_differences == 3
        audit.rebuild(session, "exp", write=True)
        assert series.stored(session, 1) == live
        assert audit.rebuild(session, "exp").equal


def test_migration_backfills_what_the_service_wrote(settings, keys_free_api):
    """Upgrade, drive the service (live rows), downgrade below 0004 and upgrade again: the
    backfilled rows are the live ones, bit for bit."""
    api, factory = keys_free_api
    drive(api, factory)
    with factory() as session:
        live = series.stored(session, 1)
    assert len(live) == 3 * api.get("/v1/experiments/exp/stats").json()["policy_version"]
    downgrade(settings, "0003_items")
    upgrade(settings)
    with factory() as session:
        assert series.stored(session, 1) == live


@pytest.fixture
def keys_free_api(settings):
    """The service on a store made by the migrations (not ``create_all``)."""
    from fastapi.testclient import TestClient

    from service.app import create_app
    from service.store import keys as key_store
    from tests.service.conftest import Api

    upgrade(settings)
    engine = make_engine(settings)
    factory = make_sessionmaker(engine)
    raw = {}
    with factory() as session:
        for scope in key_store.SCOPES:
            raw[scope], _ = key_store.create_api_key(session, scope, f"test {scope}")
    with TestClient(create_app(settings)) as client:
        yield Api(client, raw), factory
    engine.dispose()
