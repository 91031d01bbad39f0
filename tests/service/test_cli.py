"""``bandit-fusion keys create|revoke|list``, ``rebuild`` and ``db upgrade`` (both backends)."""

from __future__ import annotations

from typer.testing import CliRunner

from cli.main import app


def _env(settings):
    env = {"BANDIT_FUSION_SETTLE_INTERVAL_S": "0"}
    if settings.is_sqlite:
        env["BANDIT_FUSION_SQLITE_PATH"] = str(settings.sqlite_path)
        env["BANDIT_FUSION_DATABASE_URL"] = ""
    else:
        env["BANDIT_FUSION_DATABASE_URL"] = settings.url
        env["BANDIT_FUSION_DATABASE_SCHEMA"] = settings.database_schema or ""
    return env


def test_keys_and_rebuild(settings, monkeypatch):
    from fastapi.testclient import TestClient

    from service.app import create_app

    for k, v in _env(settings).items():
        if v:
            monkeypatch.setenv(k, v)
        else:
            monkeypatch.delenv(k, raising=False)
    runner = CliRunner()
    r = runner.invoke(app, ["db", "upgrade"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["keys", "create", "--scope", "admin", "--name", "ops"])
    assert r.exit_code == 0, r.output
    raw = r.stdout.strip().splitlines()[0]
    assert raw.startswith("bf_")
    assert runner.invoke(app, ["keys", "create", "--scope", "root"]).exit_code == 2
    with TestClient(create_app(settings)) as client:
        h = {"Authorization": f"Bearer {raw}"}
        assert (
            client.post(
                "/v1/experiments", json={"key": "x", "arms": ["a", "b"]}, headers=h
            ).status_code
            == 201
        )
        d = client.post("/v1/experiments/x/decisions", json={"unit_id": "u"}, headers=h).json()
        client.post("/v1/experiments/x/rewards", json={"decision_id": d["decision_id"]}, headers=h)
        r = runner.invoke(app, ["rebuild", "--experiment", "x"])
        assert r.exit_code == 0 and "x: equal (version 1, 1 updates" in r.output, r.output
        assert runner.invoke(app, ["rebuild", "--all"]).exit_code == 0
        assert runner.invoke(app, ["rebuild", "-e", "nope"]).exit_code == 1
        listed = runner.invoke(app, ["keys", "list"]).output
        assert "admin\tops" in listed
        prefix = raw.split("_")[1]
        r = runner.invoke(app, ["keys", "revoke", prefix])
        assert r.exit_code == 0 and "revoked" in r.output
        assert client.get("/v1/experiments", headers=h).status_code == 401
    assert runner.invoke(app, ["keys", "revoke", "zzzzzzzz"]).exit_code == 1
