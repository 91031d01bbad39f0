"""The dashboard in a real browser: Playwright driving the operating system's Chromium.

A live server (uvicorn in a thread, on SQLite and on PostgreSQL) gets an experiment with three
arms and a fused experiment through the API, and a ``simulate`` report in its reports folder;
the test then logs in through the form, checks that Plotly drew every chart (the panels' and
the report's too), that the page's numbers equal ``/stats`` (leaderboard, decision panel,
slots, the counterfactual's logged mean), that buttons appear by scope and work, that a read
session's direct POST is refused, that logging out ends the session, and that no page logs a
console error. Screenshots go to ``$BANDIT_FUSION_TEST_OUTPUT`` (default ``test-output/``)
under ``dashboard/<backend>/``.

Skipped when Playwright or Chromium (``/usr/bin/chromium``, or ``$BANDIT_FUSION_CHROMIUM``)
is absent; no browser is downloaded.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy.orm import Session

from service.app import create_app
from service.db import make_engine, make_sessionmaker
from service.models import Base
from service.settings import Settings
from service.store import keys as key_store
from service.web_session import COOKIE
from tests.service.test_dashboard import clicked
from tests.service.test_serving import models_dir  # noqa: F401 (fixture)

CHROMIUM = Path(os.environ.get("BANDIT_FUSION_CHROMIUM", "/usr/bin/chromium"))
OUTPUT = Path(os.environ.get("BANDIT_FUSION_TEST_OUTPUT", "test-output")) / "dashboard"

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _simulate_report(folder: Path) -> None:
    """A small ``bandit-fusion simulate`` output folder (summary.json, regret.png/html)."""
    from typer.testing import CliRunner

    from cli.main import app

    args = ["simulate", "--arms", "3", "--horizon", "500", "--seeds", "2", "--jobs", "1"]
    r = CliRunner().invoke(app, [*args, "--no-progress", "--out", str(folder)])
    assert r.exit_code == 0, r.output


@pytest.fixture
def live(
    settings: Settings,
    tmp_path: Path,
    models_dir: Path,  # noqa: F811
    backend: str,
) -> Iterator[dict[str, Any]]:
    """A running service with one key per scope: ``{"url", "keys", "backend"}``."""
    _simulate_report(tmp_path / "reports" / "simulate-small")
    extra = {"settle_interval_s": 0.3, "models_dir": models_dir, "max_k": 20}
    settings = settings.model_copy(update={**extra, "reports_dir": tmp_path / "reports"})
    engine = make_engine(settings)
    Base.metadata.create_all(engine)
    keys = {}
    with make_sessionmaker(engine)() as session:
        assert isinstance(session, Session)
        for scope in key_store.SCOPES:
            keys[scope], _ = key_store.create_api_key(session, scope, f"browser {scope}")
    engine.dispose()
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the live server did not start"
    try:
        yield {"url": f"http://127.0.0.1:{port}", "keys": keys, "backend": backend}
    finally:
        server.should_exit = True
        thread.join(10)


def _drive(url: str, keys: dict[str, str]) -> dict[str, Any]:
    """Three arms, 90 decisions, clicks by ``clicked`` in six batches; the others are
    learned as zeros when their 1 s reward window closes (the server settles every 0.3 s)."""
    admin = {"Authorization": f"Bearer {keys['admin']}"}
    write = {"Authorization": f"Bearer {keys['write']}"}
    with httpx.Client(base_url=url) as c:
        body = {"key": "checkout", "name": "Checkout button", "arms": ["a", "b", "c"]}
        body |= {"policy": "thompson", "seed": 3, "reward": {"click": 1}, "reward_window_s": 1}
        assert c.post("/v1/experiments", json=body, headers=admin).status_code == 201
        for start in range(0, 90, 15):
            ds = [
                c.post(
                    "/v1/experiments/checkout/decisions", json={"unit_id": f"u{i}"}, headers=write
                ).json()
                for i in range(start, start + 15)
            ]
            items = [
                {"decision_id": d["decision_id"], "kind": "click", "reward_id": f"r{i}"}
                for i, d in enumerate(ds, start=start)
                if clicked(d["arm"], i)
            ]
            r = c.post(
                "/v1/experiments/checkout/rewards/batch", json={"rewards": items}, headers=write
            )
            assert r.status_code == 200, r.text
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            health = c.get("/v1/experiments/checkout/health", headers=admin).json()
            if health["pending_decisions"] == 0:
                break
            time.sleep(0.3)
        assert health["pending_decisions"] == 0, health
        time.sleep(1.5)  # a settle pass after the last window: every decision is settled
        stats = c.get("/v1/experiments/checkout/stats", headers=admin).json()
    return dict(stats)


def _drive_fuse(url: str, keys: dict[str, str]) -> dict[str, Any]:
    """A fused experiment (three recommenders, lists of 4): 30 decisions, clicks credited by
    item on slots 1 and 3 by a fixed rule; returns its ``/stats``."""
    admin = {"Authorization": f"Bearer {keys['admin']}"}
    write = {"Authorization": f"Bearer {keys['write']}"}
    with httpx.Client(base_url=url) as c:
        body = {"key": "feed", "arms": ["a", "b", "c"], "mode": "fuse", "seed": 5}
        body |= {"recommenders": {"a": "pop", "b": "mf", "c": "knn"}, "reward_window_s": None}
        r = c.post("/v1/experiments", json=body, headers=admin)
        assert r.status_code == 201, r.text
        rewards = []
        for i in range(30):
            d = c.post(
                "/v1/experiments/feed/decisions", json={"unit_id": str(i), "k": 4}, headers=write
            ).json()
            for it in d["items"]:
                if (it["position"] == 0 and i % 2 == 0) or (it["position"] == 2 and i % 5 == 0):
                    rewards.append(
                        {
                            "decision_id": d["decision_id"],
                            "kind": "click",
                            "item_id": it["item_id"],
                            "reward_id": f"f{i}-{it['position']}",
                        }
                    )
        r = c.post("/v1/experiments/feed/rewards/batch", json={"rewards": rewards}, headers=write)
        assert r.status_code == 200, r.text
        stats = c.get("/v1/experiments/feed/stats", headers=admin).json()
    return dict(stats)


def _login(page: Any, url: str, raw: str) -> None:
    page.goto(f"{url}/dashboard")
    assert page.url.endswith("/dashboard/login")
    page.fill("input[name=key]", raw)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/dashboard")


def _watch(page: Any, errors: list[str]) -> None:
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))


def _number(page: Any, selector: str, attribute: str) -> float:
    return float(page.locator(selector).first.get_attribute(attribute))


def _check_panels(page: Any, stats: dict[str, Any]) -> None:
    """Decision and counterfactual panels: drawn, and equal to ``/stats``."""
    # the first view queues the counterfactual evaluation off the page's path: reload
    for _ in range(60):
        if page.locator("#counterfactual-pending").count() == 0:
            break
        page.wait_for_timeout(500)
        page.reload()
    assert page.locator("#counterfactual-pending").count() == 0
    arms = stats["arms"]
    champion = max(arms, key=lambda a: a["prob_best"])["arm"]
    assert page.locator("#value-remaining").get_attribute("data-champion") == champion
    collected = sum(a["observations"] * a["mean_reward"] for a in arms)
    assert _number(page, "#equal-split", "data-actual") == pytest.approx(collected)
    # every decision settled, rewards are single clicks: the log earned clicks / decisions
    logged = _number(page, 'tr[data-policy="logged"] [data-field="snips"]', "data-value")
    clicks, decisions = sum(a["clicks"] for a in arms), sum(a["decisions"] for a in arms)
    assert logged == pytest.approx(clicks / decisions)
    assert page.locator("#counterfactual-table tbody tr").count() == 3 + len(arms)
    assert page.locator("#counterfactual-table .badge").count() == 1
    page.wait_for_selector("#chart-counterfactual svg.main-svg", timeout=15_000)


def _check_slots(page: Any, stats: dict[str, Any]) -> None:
    """Slots panel of the fused experiment: drawn; clicks per arm sum to ``/stats``."""
    page.wait_for_selector("#chart-slots svg.main-svg", timeout=15_000)
    assert page.locator("#slots tbody tr").count() == 4
    for a in stats["arms"]:
        cells = page.locator(f'#slots td[data-arm="{a["arm"]}"][data-field="clicks"]')
        assert sum(int(t) for t in cells.all_inner_texts()) == a["clicks"]
    for row in page.locator("#slots tbody tr").all():
        shares = row.locator('[data-field="share"]').all_inner_texts()
        assert sum(float(x) for x in shares) == pytest.approx(1.0, abs=2e-3)


def test_dashboard_in_chromium(live: dict[str, Any]) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    url, keys = live["url"], live["keys"]
    stats = _drive(url, keys)
    fuse_stats = _drive_fuse(url, keys)
    out = OUTPUT / live["backend"]
    out.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            read = browser.new_context(viewport={"width": 1280, "height": 900})
            page = read.new_page()
            _watch(page, errors)
            _login(page, url, keys["read"])
            assert page.locator('tr[data-key="checkout"]').count() == 1
            page.screenshot(path=str(out / "experiments.png"), full_page=True)

            page.click('a[href="/dashboard/experiments/checkout"]')
            page.wait_for_url(f"{url}/dashboard/experiments/checkout")
            # rate: an interval band (two traces) and a line per arm; one line or area per arm
            for chart, layer, traces in (
                ("#chart-rate", "scatterlayer", 9),
                ("#chart-best", "scatterlayer", 3),
                ("#chart-weights", "scatterlayer", 3),
                ("#chart-traffic", "barlayer", 1),
            ):
                page.wait_for_selector(f"{chart} svg.main-svg", timeout=15_000)
                assert page.locator(f"{chart} .{layer} .trace").count() == traces
            for arm in stats["arms"]:
                row = page.locator(f'tr[data-arm="{arm["arm"]}"]')
                assert int(row.locator('[data-field="decisions"]').inner_text()) == arm["decisions"]
                shown = float(row.locator('[data-field="prob_best"]').inner_text())
                assert shown == pytest.approx(arm["prob_best"], abs=5e-5)
            _check_panels(page, stats)
            assert page.locator("#slots").count() == 0  # an allocate experiment
            assert page.locator("#action-pause").count() == 0
            assert COOKIE not in page.evaluate("document.cookie")  # HTTP-only
            assert keys["read"] not in page.content()
            page.screenshot(path=str(out / "experiment-read.png"), full_page=True)

            page.goto(f"{url}/dashboard/experiments/feed")
            _check_slots(page, fuse_stats)
            page.screenshot(path=str(out / "experiment-fuse.png"), full_page=True)

            page.click('header a[href="/dashboard/reports"]')
            page.wait_for_url(f"{url}/dashboard/reports")
            page.click('a[href="/dashboard/reports/simulate-small"]')
            # a click only starts the navigation: count rows once the report page has loaded
            page.wait_for_url(f"{url}/dashboard/reports/simulate-small")
            assert page.locator('table[data-key="results"] tbody tr').count() == 3
            frame = page.frame_locator("iframe.report-frame")
            frame.locator(".scatterlayer .trace").first.wait_for(timeout=20_000)
            assert frame.locator(".scatterlayer .trace").count() >= 3  # a line per policy
            page.locator("iframe.report-frame").scroll_into_view_if_needed()
            page.locator("iframe.report-frame").screenshot(path=str(out / "report-plot.png"))
            page.wait_for_function(
                "() => [...document.images].every(i => i.complete && i.naturalWidth > 0)"
            )
            page.screenshot(path=str(out / "report.png"), full_page=True)

            # a direct POST from the read session, with its own CSRF token, is refused
            page.goto(f"{url}/dashboard/experiments/checkout")
            status = page.evaluate(
                """async () => {
                    const csrf = document.querySelector('input[name=csrf]').value;
                    const r = await fetch('/dashboard/experiments/checkout/stop', {method: 'POST',
                        headers: {'Content-Type': 'application/x-www-form-urlencoded'},
                        body: 'csrf=' + csrf});
                    return r.status;
                }"""
            )
            assert status == 403
            errors[:] = [e for e in errors if "403" not in e]  # the refused fetch itself
            page.click("header button[type=submit]")  # log out
            page.wait_for_url(f"{url}/dashboard/login")
            page.goto(f"{url}/dashboard")
            assert page.url.endswith("/dashboard/login")

            admin = browser.new_context(viewport={"width": 1280, "height": 900})
            apage = admin.new_page()
            _watch(apage, errors)
            _login(apage, url, keys["admin"])
            apage.goto(f"{url}/dashboard/experiments/checkout")
            apage.once("dialog", lambda d: d.dismiss())  # declined: nothing happens
            apage.click("#action-pause")
            assert apage.locator("h1 .status").inner_text() == "active"
            apage.once("dialog", lambda d: d.accept())
            apage.click("#action-pause")
            apage.wait_for_selector("h1 .status.paused")
            apage.screenshot(path=str(out / "experiment-admin-paused.png"), full_page=True)
        finally:
            browser.close()
    with httpx.Client(base_url=url) as c:
        r = c.get("/v1/experiments/checkout", headers={"Authorization": f"Bearer {keys['read']}"})
        assert r.json()["status"] == "paused"
    assert errors == []
