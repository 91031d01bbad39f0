"""Scoped API keys: 401 without or with a bad key, 403 for a scope too low, revocation."""

from __future__ import annotations

from service.store import keys as key_store


def test_no_key_401(api):
    r = api.client.get("/v1/experiments")
    assert r.status_code == 401 and "missing API key" in r.json()["detail"]
    r = api.client.get("/v1/experiments", headers={"Authorization": "Bearer bf_nope_nope"})
    assert r.status_code == 401 and "invalid" in r.json()["detail"]


def test_x_api_key_header(api):
    r = api.client.get("/v1/experiments", headers={"X-API-Key": api.keys["read"]})
    assert r.status_code == 200


def test_scopes(api):
    body = {"key": "x", "arms": ["a", "b"]}
    assert api.post("/v1/experiments", body, scope="write").status_code == 403
    r = api.post("/v1/experiments", body, scope="read")
    assert r.status_code == 403 and "needs 'admin'" in r.json()["detail"]
    assert api.post("/v1/experiments", body, scope="admin").status_code == 201
    d = api.post("/v1/experiments/x/decisions", {"unit_id": "u"}, scope="read")
    assert d.status_code == 403
    d = api.post("/v1/experiments/x/decisions", {"unit_id": "u"}, scope="write")
    assert d.status_code == 201
    r = api.post(
        "/v1/experiments/x/rewards", {"decision_id": d.json()["decision_id"]}, scope="read"
    )
    assert r.status_code == 403
    assert api.post("/v1/experiments/x/pause", scope="write").status_code == 403
    for scope in ("read", "write", "admin"):  # everything readable with any key
        assert api.get("/v1/experiments/x/stats", scope=scope).status_code == 200


def test_keys_are_hashed_and_revocable(api, session_factory):
    from sqlalchemy import select

    from service.models import ApiKey

    with session_factory() as session:
        stored = session.scalars(select(ApiKey.key_hash)).all()
        assert api.keys["read"] not in stored
        assert key_store.hash_key(api.keys["read"]) in stored
        prefix = api.keys["read"].split("_")[1]
        key_store.revoke_api_key(session, prefix)
    r = api.get("/v1/experiments")
    assert r.status_code == 401 and "revoked" in r.json()["detail"]
