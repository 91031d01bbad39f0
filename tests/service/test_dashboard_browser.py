"""The dashboard in a real browser: Playwright driving the operating system's Chromium.

A live server (uvicorn in a thread, SQLite) gets an experiment with three arms through the
API; the test then logs in through the form, checks that Plotly drew every chart, that the
page's numbers equal ``/stats``, that buttons appear by scope and work, that a read session's
direct POST is refused, and that no page logs a console error. Screenshots go to
``$BANDIT_FUSION_TEST_OUTPUT`` (default ``test-output/``) under ``dashboard/``.

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
from service.store import keys as key_store
from service.web_session import COOKIE
from tests.service.conftest import make_settings
from tests.service.test_dashboard import clicked

CHROMIUM = Path(os.environ.get("BANDIT_FUSION_CHROMIUM", "/usr/bin/chromium"))
OUTPUT = Path(os.environ.get("BANDIT_FUSION_TEST_OUTPUT", "test-output")) / "dashboard"

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def live(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A running service on SQLite with one key per scope: ``{"url", "keys"}``."""
    settings = make_settings("sqlite", tmp_path, settle_interval_s=0.3)
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
        yield {"url": f"http://127.0.0.1:{port}", "keys": keys}
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
        stats = c.get("/v1/experiments/checkout/stats", headers=admin).json()
    return dict(stats)


def _login(page: Any, url: str, raw: str) -> None:
    page.goto(f"{url}/dashboard")
    assert page.url.endswith("/dashboard/login")
    page.fill("input[name=key]", raw)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/dashboard")


def test_dashboard_in_chromium(live: dict[str, Any]) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    url, keys = live["url"], live["keys"]
    stats = _drive(url, keys)
    OUTPUT.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            read = browser.new_context(viewport={"width": 1280, "height": 900})
            page = read.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            _login(page, url, keys["read"])
            assert page.locator('tr[data-key="checkout"]').count() == 1
            page.screenshot(path=str(OUTPUT / "experiments.png"), full_page=True)

            page.click('a[href="/dashboard/experiments/checkout"]')
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
            assert page.locator("#action-pause").count() == 0
            assert COOKIE not in page.evaluate("document.cookie")  # HTTP-only
            assert keys["read"] not in page.content()
            page.screenshot(path=str(OUTPUT / "experiment-read.png"), full_page=True)
            # a direct POST from the read session, with its own CSRF token, is refused
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

            admin = browser.new_context(viewport={"width": 1280, "height": 900})
            apage = admin.new_page()
            apage.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            apage.on("pageerror", lambda e: errors.append(str(e)))
            _login(apage, url, keys["admin"])
            apage.goto(f"{url}/dashboard/experiments/checkout")
            apage.once("dialog", lambda d: d.dismiss())  # declined: nothing happens
            apage.click("#action-pause")
            assert apage.locator("h1 .status").inner_text() == "active"
            apage.once("dialog", lambda d: d.accept())
            apage.click("#action-pause")
            apage.wait_for_selector("h1 .status.paused")
            apage.screenshot(path=str(OUTPUT / "experiment-admin-paused.png"), full_page=True)
        finally:
            browser.close()
    with httpx.Client(base_url=url) as c:
        r = c.get("/v1/experiments/checkout", headers={"Authorization": f"Bearer {keys['read']}"})
        assert r.json()["status"] == "paused"
    assert errors == []
