"""Experiments API: create, list, read, pause/resume/stop and validation (both backends)."""

from __future__ import annotations

import pytest


def test_create_read_list(api):
    exp = api.experiment(
        "hero",
        arms=["control", "pop", "mf"],
        control_arm="control",
        control_share=0.2,
        floors=0.05,
        reward={"click": 1, "conversion": 5},
    )
    assert exp["status"] == "active" and exp["policy_version"] == 0
    assert exp["floors"] == [0.05, 0.05, 0.05]
    assert exp["fallback_arm"] == "control"  # defaults to the control arm
    assert exp["params"]  # the policy's full hyper-parameters are stored
    got = api.get("/v1/experiments/hero").json()
    assert got == exp
    for i in range(4):
        api.experiment(f"e{i}")
    page = api.get("/v1/experiments", limit=2, offset=1).json()
    assert page["total"] == 5 and page["limit"] == 2 and page["offset"] == 1
    assert [e["key"] for e in page["items"]] == ["e0", "e1"]
    assert api.get("/v1/experiments", limit=50, offset=5).json()["items"] == []


def test_duplicate_key_is_409(api):
    api.experiment("x")
    r = api.post("/v1/experiments", {"key": "x", "arms": ["a", "b"]})
    assert r.status_code == 409 and "already exists" in r.json()["detail"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"policy": "no-such-policy"}, "unknown policy 'no-such-policy'"),
        ({"params": {"bogus": 1}}, "unknown parameter 'bogus'"),
        ({"policy": "discounted-thompson", "params": {"gamma": 2.0}}, "gamma"),
        ({"arms": ["a", "b", "a"]}, "duplicated: a"),
        ({"arms": ["a"]}, "arms"),
        ({"floors": [0.5, 0.4, 0.3]}, "floors sum to 1.2"),
        ({"floors": 0.4}, "floors sum to 1.2"),
        ({"floors": [0.1, 0.1]}, "floors has 2 entries but there are 3 arms"),
        ({"control_arm": "zzz", "control_share": 0.1}, "control_arm 'zzz' is not one of the arms"),
        ({"control_share": 0.1}, "control_share > 0 needs a control_arm"),
        ({"reward": {"click": -1}}, "positive finite"),
        ({"reward": {"view": 1}}, "reward"),
        ({"mode": "fuse"}, "mode 'fuse' needs a recommender for every arm"),
        ({"recommenders": {"a": "mf", "b": "pop", "c": "knn"}}, "not loaded: knn, mf, pop"),
        ({"recommenders": {"zz": "mf"}}, "not arms: zz"),
        ({"fuser": "slot-mix"}, "fuser is set but mode is not 'fuse'"),
        ({"params": {"seed": 3}}, "params may not set seed"),
        ({"key": "has space"}, "key"),
    ],
)
def test_validation_422(api, spec, message):
    body = {"key": "bad", "arms": ["a", "b", "c"], **spec}
    r = api.post("/v1/experiments", body)
    assert r.status_code == 422, r.text
    assert message in r.json()["detail"]
    assert api.get("/v1/experiments").json()["total"] == 0  # nothing stored


def test_unknown_experiment_404(api):
    assert api.get("/v1/experiments/nope").status_code == 404
    r = api.post("/v1/experiments/nope/pause")
    assert r.status_code == 404 and "nope" in r.json()["detail"]


def test_pause_resume_stop(api):
    api.experiment("x")
    assert api.post("/v1/experiments/x/pause").json()["status"] == "paused"
    assert api.post("/v1/experiments/x/pause").json()["status"] == "paused"  # idempotent
    assert api.post("/v1/experiments/x/resume").json()["status"] == "active"
    assert api.post("/v1/experiments/x/stop").json()["status"] == "stopped"
    r = api.post("/v1/experiments/x/resume")
    assert r.status_code == 409 and "stopped" in r.json()["detail"]
    assert api.get("/v1/experiments", status="stopped").json()["total"] == 1


def test_openapi_is_complete(api):
    spec = api.client.get("/openapi.json").json()
    paths = spec["paths"]
    for path in [
        "/v1/experiments",
        "/v1/experiments/{key}",
        "/v1/experiments/{key}/pause",
        "/v1/experiments/{key}/resume",
        "/v1/experiments/{key}/stop",
        "/v1/experiments/{key}/decisions",
        "/v1/experiments/{key}/rewards",
        "/v1/experiments/{key}/rewards/batch",
        "/v1/experiments/{key}/allocation",
        "/v1/experiments/{key}/stats",
        "/v1/experiments/{key}/health",
    ]:
        assert path in paths, path
        for op in paths[path].values():
            ok = [c for c in op["responses"] if c.startswith("2")]
            assert ok and "content" in op["responses"][ok[0]], (path, op["responses"])
    assert {"HTTPBearer", "APIKeyHeader"} <= set(spec["components"]["securitySchemes"])
    decide = paths["/v1/experiments/{key}/decisions"]["post"]
    assert "DecisionOut" in str(decide["responses"]["201"]["content"])
    assert decide["security"]
