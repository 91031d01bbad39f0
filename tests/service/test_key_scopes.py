"""API keys limited to experiments: a route x scope x experiment matrix (both backends).

For each scope (read, write, admin) there is a global key and a key limited to its own
experiment ``in-<scope>`` (and ``new-<scope>``, which it may create). Every route is called
with each key on an experiment the key covers and on one it does not; the answer is 403
exactly when the scope is too low or the experiment is not covered, and the route's success
status otherwise. Listing with a limited key shows only its experiments.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest
from typer.testing import CliRunner

from cli.main import app
from service.errors import Invalid
from service.store import keys as key_store
from tests.service.test_bad_input import snapshot
from tests.service.test_cli import _env

SCOPES = ("read", "write", "admin")


@dataclass(frozen=True)
class Route:
    name: str
    method: str
    path: str  # {e}: the target experiment
    needs: str
    ok: int
    body: str | None = None  # "create", "decision", "reward", "batch"


# stop comes last: it is final, and the routes before it must find the experiment active
ROUTES = [
    Route("read", "GET", "/v1/experiments/{e}", "read", 200),
    Route("allocation", "GET", "/v1/experiments/{e}/allocation", "read", 200),
    Route("stats", "GET", "/v1/experiments/{e}/stats", "read", 200),
    Route("health", "GET", "/v1/experiments/{e}/health", "read", 200),
    Route("decide", "POST", "/v1/experiments/{e}/decisions", "write", 201, "decision"),
    Route("reward", "POST", "/v1/experiments/{e}/rewards", "write", 200, "reward"),
    Route("batch", "POST", "/v1/experiments/{e}/rewards/batch", "write", 200, "batch"),
    Route("pause", "POST", "/v1/experiments/{e}/pause", "admin", 200),
    Route("resume", "POST", "/v1/experiments/{e}/resume", "admin", 200),
    Route("create", "POST", "/v1/experiments", "admin", 201, "create"),
    Route("stop", "POST", "/v1/experiments/{e}/stop", "admin", 200),
]


def _body(route: Route, target: str, decision: str, n: int) -> Any:
    if route.body == "create":
        return {"key": target, "arms": ["a", "b"]}
    if route.body == "decision":
        return {"unit_id": "u"}
    if route.body == "reward":
        return {"decision_id": decision, "reward_id": f"r{n}"}
    if route.body == "batch":
        return {"rewards": [{"decision_id": decision, "reward_id": f"b{n}"}]}
    return None


def test_route_scope_experiment_matrix(api, session_factory):
    limited: dict[str, str] = {}
    with session_factory() as session:
        for scope in SCOPES:
            limited[scope], info = key_store.create_api_key(
                session, scope, f"limited {scope}", [f"in-{scope}", f"new-{scope}"]
            )
            assert info.experiments == (f"in-{scope}", f"new-{scope}")
    outcomes: Counter[tuple[str, str]] = Counter()
    n = 0
    for scope in SCOPES:
        for kind, raw in (("global", api.keys[scope]), ("limited", limited[scope])):
            # a fresh pair of experiments per key: routes change their state
            pair = {"covered": f"in-{scope}", "other": f"out-{scope}-{kind}"}
            if kind == "global":
                pair["covered"] = f"g-{scope}"
            decisions = {}
            for target in pair.values():
                api.experiment(target)
                decisions[target] = api.decide(target)["decision_id"]
            for route in ROUTES:
                for which, target in pair.items():
                    if route.body == "create":
                        target = f"new-{scope}" if which == "covered" else f"nope-{scope}-{kind}"
                        if kind == "global":
                            target = f"new-global-{scope}-{which}"
                    n += 1
                    url = route.path.format(e=target)
                    body = _body(route, target, decisions.get(target, ""), n)
                    r = api.client.request(
                        route.method,
                        url,
                        json=body,
                        headers={"Authorization": f"Bearer {raw}"},
                    )
                    allowed_scope = SCOPES.index(scope) >= SCOPES.index(route.needs)
                    covered = kind == "global" or which == "covered"
                    expected = route.ok if allowed_scope and covered else 403
                    assert r.status_code == expected, (route.name, scope, kind, which, r.text)
                    if expected == 403 and allowed_scope:
                        assert "limited to the experiments" in r.json()["detail"]
                    outcomes[(route.name, str(r.status_code))] += 1
    # 11 routes x 3 scopes x 2 kinds x 2 experiments
    assert sum(outcomes.values()) == len(ROUTES) * 3 * 2 * 2
    print("\nmatrix outcomes:", dict(sorted(outcomes.items())))


def test_limited_key_lists_only_its_experiments(api, session_factory):
    for key in ("alpha", "beta", "gamma"):
        api.experiment(key)
    with session_factory() as session:
        raw, _ = key_store.create_api_key(session, "read", "", ["beta", "gamma", "not-yet"])
    r = api.client.get("/v1/experiments", headers={"X-API-Key": raw})
    assert r.status_code == 200
    page = r.json()
    assert [e["key"] for e in page["items"]] == ["beta", "gamma"] and page["total"] == 2
    everything = api.get("/v1/experiments").json()
    assert everything["total"] == 3


def test_limited_key_needs_valid_experiment_keys(session_factory):
    with session_factory() as session:
        for bad in ([], ["ok", "no spaces"], ["x\x00"]):
            with pytest.raises(Invalid):
                key_store.create_api_key(session, "write", "", bad)
        for name in ("x" * 201, "a\x00b", "\ud800"):
            with pytest.raises(Invalid, match="key name"):
                key_store.create_api_key(session, "write", name)


def test_forbidden_requests_store_nothing(api, db, session_factory):
    api.experiment("mine")
    api.experiment("theirs")
    d = api.decide("theirs")["decision_id"]
    with session_factory() as session:
        raw, _ = key_store.create_api_key(session, "admin", "", ["mine"])
    before = snapshot(db)
    h = {"Authorization": f"Bearer {raw}"}
    calls = [
        ("/v1/experiments/theirs/decisions", {"unit_id": "u"}),
        ("/v1/experiments/theirs/rewards", {"decision_id": d}),
        ("/v1/experiments/theirs/rewards/batch", {"rewards": [{"decision_id": d}]}),
        ("/v1/experiments/theirs/stop", None),
        ("/v1/experiments", {"key": "other", "arms": ["a", "b"]}),
    ]
    for url, body in calls:
        assert api.client.post(url, json=body, headers=h).status_code == 403, url
    assert snapshot(db) == before


def test_cli_creates_limited_keys(settings, monkeypatch):
    for k, v in _env(settings).items():
        if v:
            monkeypatch.setenv(k, v)
        else:
            monkeypatch.delenv(k, raising=False)
    runner = CliRunner()
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    r = runner.invoke(
        app, ["keys", "create", "--scope", "write", "--experiment", "a", "--experiment", "b"]
    )
    assert r.exit_code == 0, r.output
    assert "for a,b" in r.output
    bad = runner.invoke(app, ["keys", "create", "--experiment", "not valid"])
    assert bad.exit_code == 2 and "not an experiment key" in bad.output
    listed = runner.invoke(app, ["keys", "list"]).output
    assert listed.strip().endswith("a,b")
