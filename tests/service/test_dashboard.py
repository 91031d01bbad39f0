"""Dashboard pages: sessions, access by scope, CSRF, CSV, and the page's numbers equal /stats."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from service.app import create_app
from service.models import utcnow
from service.policies import PolicyCache
from service.store import keys as key_store
from service.store import learning
from service.web_session import COOKIE, LOGIN_COOKIE, SessionSigner
from service.web_views import WINNER_PROB_BEST

ROW = re.compile(r'<tr data-arm="([^"]+)">(.*?)</tr>', re.S)
CELL = re.compile(r'data-field="(\w+)">([^<]*)<')
CSRF = re.compile(r'name="csrf" value="([0-9a-f]+)"')


def clicked(arm: str, i: int) -> bool:
    """Arm ``a`` is clicked about 3 times in 4, the others about once in 3."""
    return (arm == "a" and i % 4 != 0) or i % 3 == 0


def drive(api, session_factory, key: str = "exp", n: int = 60) -> None:
    """Three arms, ``n`` decisions, clicks by :func:`clicked` in batches of 20 (several
    policy updates), then every other decision's window closes: it is learned as a zero."""
    api.experiment(key=key, reward={"click": 1}, reward_window_s=60)
    ds = [api.decide(key=key, unit=f"u{i}") for i in range(n)]
    for chunk in range(0, n, 20):
        items = [
            {"decision_id": d["decision_id"], "kind": "click", "reward_id": f"c{i}"}
            for i, d in enumerate(ds[chunk : chunk + 20], start=chunk)
            if clicked(d["arm"], i)
        ]
        r = api.post(f"/v1/experiments/{key}/rewards/batch", {"rewards": items}, scope="write")
        assert r.status_code == 200, r.text
    with session_factory() as session:
        later = utcnow() + dt.timedelta(seconds=120)
        learning.settle(session, key, PolicyCache(), now=later)


def login_form(client: TestClient, **fields: str) -> Any:
    """POST the login form as a browser does: GET the page (its cookie and token) first."""
    page = client.get("/dashboard/login")
    assert page.status_code == 200 and LOGIN_COOKIE in client.cookies
    return client.post(
        "/dashboard/login", data={"csrf": csrf_of(page.text), **fields}, follow_redirects=False
    )


def login(client: TestClient, raw: str) -> None:
    r = login_form(client, key=raw)
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/dashboard"
    cookie = r.headers["set-cookie"]
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
    assert raw not in cookie


def csrf_of(html: str) -> str:
    m = CSRF.search(html)
    assert m is not None
    return m.group(1)


def test_pages_need_a_session(api, session_factory):
    drive(api, session_factory, n=6)
    c = api.client
    r = c.get("/dashboard", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/dashboard/login"
    assert c.get("/dashboard/experiments/exp", follow_redirects=False).status_code == 303
    assert c.get("/dashboard/experiments/exp/arms.csv").status_code == 401
    assert c.post("/dashboard/experiments/exp/pause", data={"csrf": "x"}).status_code == 401
    # an API key in a header is not a session
    assert c.get("/dashboard", headers=api.h("admin"), follow_redirects=False).status_code == 303
    r = login_form(c, key="bf_wrong")
    assert r.status_code == 401 and "Unknown or revoked" in r.text
    r = c.post("/dashboard/login", data={f"f{i}": "x" for i in range(50)})
    assert r.status_code == 400 and "too many fields" in r.text
    assert COOKIE not in c.cookies


def test_page_numbers_equal_the_api_stats(api, session_factory):
    drive(api, session_factory)
    login(api.client, api.keys["read"])
    html = api.client.get("/dashboard/experiments/exp").text
    stats = api.get("/v1/experiments/exp/stats").json()
    rows = {arm: dict(CELL.findall(body)) for arm, body in ROW.findall(html)}
    assert set(rows) == {"a", "b", "c"}
    for a in stats["arms"]:
        cells = rows[a["arm"]]
        for field in ("decisions", "clicks", "conversions"):
            assert int(cells[field]) == a[field]
        for field in ("mean_reward", "prob_best", "expected_loss", "weight"):
            assert float(cells[field]) == pytest.approx(a[field], abs=5e-5)
    winners = [a["arm"] for a in stats["arms"] if a["prob_best"] >= WINNER_PROB_BEST]
    assert html.count('class="badge">winner') == len(winners)
    assert f"reaches {WINNER_PROB_BEST:.2f}" in html
    # the key never reaches the page; the read session sees no action button
    assert api.keys["read"] not in html and "action-pause" not in html
    assert "/dashboard/static/plotly.min.js" in html and "cdn" not in html.lower()
    health = api.get("/v1/experiments/exp/health").json()
    assert "Healthy" in html and not health["srm"]["mismatch"]
    # every decision is learned: one observation each, zeros included
    assert sum(a["observations"] for a in stats["arms"]) == 60 and health["pending_decisions"] == 0
    assert min(a["mean_reward"] for a in stats["arms"] if a["observations"]) < 1


def test_list_page_and_status_filter(api, session_factory):
    drive(api, session_factory, key="one", n=10)
    drive(api, session_factory, key="two", n=4)
    api.post("/v1/experiments/two/pause")
    login(api.client, api.keys["read"])
    html = api.client.get("/dashboard").text
    assert 'data-key="one"' in html and 'data-key="two"' in html
    paused = api.client.get("/dashboard?status=paused").text
    assert 'data-key="two"' in paused and 'data-key="one"' not in paused
    assert api.client.get("/dashboard?status=bogus").status_code == 422
    stats = api.get("/v1/experiments/one/stats").json()
    row = re.search(r'<tr data-key="one">(.*?)</tr>', html, re.S)
    assert row is not None
    nums = re.findall(r'<td class="num">([^<]*)</td>', row.group(1))
    assert int(nums[0]) == sum(a["decisions"] for a in stats["arms"])
    assert int(nums[1]) == sum(a["clicks"] for a in stats["arms"])
    best = max(stats["arms"], key=lambda a: a["prob_best"])
    assert float(nums[2]) == pytest.approx(best["prob_best"], abs=5e-4)


def test_csv_equals_stats(api, session_factory):
    drive(api, session_factory)
    login(api.client, api.keys["read"])
    r = api.client.get("/dashboard/experiments/exp/arms.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    stats = api.get("/v1/experiments/exp/stats").json()
    assert [row["arm"] for row in rows] == [a["arm"] for a in stats["arms"]]
    for row, a in zip(rows, stats["arms"], strict=True):
        assert int(row["decisions"]) == a["decisions"]
        assert float(row["prob_best"]) == pytest.approx(a["prob_best"])
        assert float(row["weight"]) == pytest.approx(a["weight"])


@pytest.mark.parametrize("scope", ["read", "write"])
def test_non_admin_session_cannot_change_anything(api, session_factory, scope):
    drive(api, session_factory, n=6)
    c = api.client
    login(c, api.keys[scope])
    html = c.get("/dashboard/experiments/exp").text
    assert "action-pause" not in html
    token = csrf_of(html)
    for action in ("pause", "resume", "stop"):
        r = c.post(f"/dashboard/experiments/exp/{action}", data={"csrf": token})
        assert r.status_code == 403
    assert api.get("/v1/experiments/exp").json()["status"] == "active"


def test_admin_actions_need_the_csrf_token(api, session_factory):
    drive(api, session_factory, n=6)
    c = api.client
    login(c, api.keys["admin"])
    html = c.get("/dashboard/experiments/exp").text
    assert "action-pause" in html and 'data-confirm="Pause experiment exp?"' in html
    token = csrf_of(html)
    assert c.post("/dashboard/experiments/exp/pause").status_code == 403
    assert c.post("/dashboard/experiments/exp/pause", data={"csrf": "0" * 64}).status_code == 403
    assert api.get("/v1/experiments/exp").json()["status"] == "active"
    r = c.post("/dashboard/experiments/exp/pause", data={"csrf": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/dashboard/experiments/exp"
    assert api.get("/v1/experiments/exp").json()["status"] == "paused"
    c.post("/dashboard/experiments/exp/resume", data={"csrf": token})
    assert api.get("/v1/experiments/exp").json()["status"] == "active"
    assert c.post("/dashboard/experiments/exp/explode", data={"csrf": token}).status_code == 404


def test_login_form_needs_its_csrf_token(api, session_factory):
    drive(api, session_factory, n=4)
    c = api.client
    raw = api.keys["read"]
    # no form fetched: no login cookie, so no token can match (a cross-site POST)
    r = c.post("/dashboard/login", data={"key": raw, "csrf": "0" * 64}, follow_redirects=False)
    assert r.status_code == 403 and COOKIE not in c.cookies
    page = c.get("/dashboard/login")
    assert 'name="csrf"' in page.text
    assert "httponly" in page.headers["set-cookie"].lower()
    for wrong in ({}, {"csrf": "0" * 64}, {"csrf": ""}):
        r = c.post("/dashboard/login", data={"key": raw, **wrong}, follow_redirects=False)
        assert r.status_code == 403 and "expired or came from elsewhere" in r.text
        assert COOKIE not in c.cookies
    # the token of another login cookie does not fit this one
    other = TestClient(c.app)
    foreign = csrf_of(other.get("/dashboard/login").text)
    r = c.post("/dashboard/login", data={"key": raw, "csrf": foreign}, follow_redirects=False)
    assert r.status_code == 403 and COOKIE not in c.cookies
    login(c, raw)
    assert c.get("/dashboard", follow_redirects=False).status_code == 200


def test_logout_and_revocation_end_the_session(api, session_factory):
    drive(api, session_factory, n=6)
    c = api.client
    login(c, api.keys["read"])
    copied = c.cookies[COOKIE]
    token = csrf_of(c.get("/dashboard").text)
    assert c.post("/dashboard/logout", data={"csrf": "0" * 64}).status_code == 403
    r = c.post("/dashboard/logout", data={"csrf": token}, follow_redirects=False)
    assert r.status_code == 303 and COOKIE not in c.cookies
    assert c.get("/dashboard", follow_redirects=False).status_code == 303
    # a copy of the logged-out cookie is refused too
    c.cookies.set(COOKIE, copied, path="/dashboard")
    assert c.get("/dashboard", follow_redirects=False).status_code == 303
    c.cookies.clear()
    login(c, api.keys["read"])
    assert c.get("/dashboard", follow_redirects=False).status_code == 200
    with session_factory() as session:
        key_store.revoke_api_key(session, api.keys["read"])
    assert c.get("/dashboard", follow_redirects=False).status_code == 303


def test_limited_key_sees_only_its_experiments(api, session_factory):
    drive(api, session_factory, key="mine", n=4)
    drive(api, session_factory, key="other", n=4)
    with session_factory() as session:
        raw, _ = key_store.create_api_key(session, "admin", "limited", ["mine"])
    login(api.client, raw)
    html = api.client.get("/dashboard").text
    assert 'data-key="mine"' in html and 'data-key="other"' not in html
    assert api.client.get("/dashboard/experiments/other").status_code == 403
    token = csrf_of(api.client.get("/dashboard/experiments/mine").text)
    assert (
        api.client.post("/dashboard/experiments/other/stop", data={"csrf": token}).status_code
        == 403
    )
    assert api.get("/v1/experiments/other").json()["status"] == "active"


def test_forged_or_expired_cookie_is_refused(api, session_factory):
    drive(api, session_factory, n=4)
    c = api.client
    forged = SessionSigner(b"x" * 32, 3600).issue(1)
    c.cookies.set(COOKIE, forged, path="/dashboard")
    assert c.get("/dashboard", follow_redirects=False).status_code == 303
    signer: SessionSigner = c.app.state.session_signer  # type: ignore[attr-defined]
    c.cookies.set(COOKIE, signer.issue(1, now=0.0), path="/dashboard")
    assert c.get("/dashboard", follow_redirects=False).status_code == 303
    c.cookies.set(COOKIE, signer.issue(1), path="/dashboard")  # key id 1: the read key
    assert c.get("/dashboard", follow_redirects=False).status_code == 200


def test_plotly_is_served_from_the_package(api):
    import plotly

    r = api.client.get("/dashboard/static/plotly.min.js")
    assert r.status_code == 200 and "max-age" in r.headers["cache-control"]
    expected = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    assert len(r.content) == expected.stat().st_size
    assert api.client.get("/dashboard/static/dashboard.js").status_code == 200
    assert api.client.get("/dashboard/static/..%2Fapp.py").status_code == 404


def test_short_secret_is_refused(tmp_path):
    from service.settings import Settings

    with pytest.raises(ValueError, match="dashboard_secret"):
        Settings(_env_file=None, sqlite_path=tmp_path / "x.db", dashboard_secret="short")  # type: ignore[call-arg]


def test_sessions_survive_a_restart_with_a_fixed_secret(db, keys):
    secret = SecretStr("s" * 40)
    settings = db.model_copy(update={"dashboard_secret": secret})
    with TestClient(create_app(settings)) as first:
        login(first, keys["read"])
        cookie = first.cookies[COOKIE]
    settings = db.model_copy(update={"dashboard_secret": SecretStr("s" * 40)})
    with TestClient(create_app(settings)) as second:
        second.cookies.set(COOKIE, cookie, path="/dashboard")
        assert second.get("/dashboard", follow_redirects=False).status_code == 200
