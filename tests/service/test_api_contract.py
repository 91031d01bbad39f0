"""The API's contract: one error model, documented statuses, size limits, production mode."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.db import make_engine, make_sessionmaker
from service.limits import BodySizeLimit
from service.models import Base
from service.settings import Settings
from service.store import keys as key_store
from tests.service.conftest import make_settings


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(p, m, op) for p, item in doc["paths"].items() for m, op in item.items()]


def test_every_error_response_is_documented_with_the_one_error_model(tmp_path: Path) -> None:
    doc = create_app(make_settings("sqlite", tmp_path)).openapi()
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    error = doc["components"]["schemas"]["Error"]
    assert error["properties"]["detail"]["type"] == "string" and error["required"] == ["detail"]
    for path, method, op in _operations(doc):
        codes = {int(c) for c in op["responses"]}
        for code in codes:
            if code >= 400:
                ref = op["responses"][str(code)]["content"]["application/json"]["schema"]
                assert ref == {"$ref": "#/components/schemas/Error"}, (path, method, code)
        if path != "/v1/health":
            assert {401, 403, 422} <= codes, (path, method)
        if "requestBody" in op:
            assert {400, 413, 422} <= codes, (path, method)
        if "{key}" in path:
            assert 404 in codes, (path, method)


def test_validation_error_body_matches_the_model(api) -> None:
    r = api.post("/v1/experiments", {"key": "x", "arms": ["a"], "burn_in": -1})
    assert r.status_code == 422
    body = r.json()
    assert isinstance(body["detail"], str) and "body.arms" in body["detail"]
    assert {tuple(e) for e in body["errors"]} == {("type", "loc", "msg")}
    assert {tuple(e["loc"]) for e in body["errors"]} == {("body", "arms"), ("body", "burn_in")}


def test_content_length_above_the_limit_is_refused_unread() -> None:
    """413 from the announced length alone: the body is never received."""
    reads: list[int] = []
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        reads.append(1)
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("the app must not be called")

    scope = {"type": "http", "method": "POST", "headers": [(b"content-length", b"2000")]}
    asyncio.run(BodySizeLimit(app, max_bytes=1024)(scope, receive, send))
    assert reads == []
    assert sent[0]["status"] == 413
    assert "above the limit of 1024 bytes" in json.loads(sent[1]["body"])["detail"]


def _file_settings(url: str, environment: str) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None, database_url=url, environment=environment, settle_interval_s=0
    )


def _production(tmp_path: Path) -> tuple[Settings, str]:
    settings = _file_settings(f"sqlite:///{tmp_path}/p.db", "production")
    engine = make_engine(settings)
    Base.metadata.create_all(engine)
    with make_sessionmaker(engine)() as session:
        raw, _ = key_store.create_api_key(session, "read", "docs reader")
    engine.dispose()
    return settings, raw


def test_production_docs_need_a_key_and_health_reveals_no_backend(tmp_path: Path) -> None:
    settings, raw = _production(tmp_path)
    with TestClient(create_app(settings)) as client:
        for url in ("/openapi.json", "/docs"):
            assert client.get(url).status_code == 401
            bad = client.get(url, headers={"Authorization": "Bearer bf_x_y"})
            assert bad.status_code == 401
        doc = client.get("/openapi.json", headers={"X-API-Key": raw})
        assert doc.status_code == 200 and "/v1/experiments" in doc.json()["paths"]
        page = client.get("/docs", headers={"Authorization": f"Bearer {raw}"})
        assert page.status_code == 200 and "swagger" in page.text.lower()
        assert '"/v1/experiments"' in page.text  # the document is embedded in the page
        health = client.get("/v1/health")
        assert health.status_code == 200 and health.json() == {"status": "ok"}
        assert "sqlite" not in health.text.lower()


@pytest.mark.parametrize("environment", ["local", "production"])
def test_health_is_503_when_the_database_is_down(tmp_path: Path, environment: str) -> None:
    url = f"sqlite:///{tmp_path}/missing-dir/x.db"
    settings = _file_settings(url, environment)
    with TestClient(create_app(settings)) as client:
        r = client.get("/v1/health")
        assert r.status_code == 503 and r.json() == {"detail": "unavailable"}


def test_local_health_names_the_backend(api, backend: str) -> None:
    assert api.client.get("/v1/health").json() == {"status": "ok", "database": backend}
