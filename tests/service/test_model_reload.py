"""Hot reload of the models directory: admin endpoint, SIGHUP, refusals, nothing lost."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.models import Decision
from tests.service.conftest import Api
from tests.service.models_fixture import write_models

RECS = {"a": "mf", "b": "bert", "c": "pop", "d": "knn"}
NEW_DATE = "2026-12-02T08:30:00+00:00"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("models")
    return write_models(out, tmp_path_factory.mktemp("bert-cache"))


@pytest.fixture
def models_dir(trained: Path, tmp_path: Path) -> Path:
    """A copy the test may retrain or break."""
    return Path(shutil.copytree(trained, tmp_path / "models"))


@pytest.fixture
def app(db: Any, models_dir: Path) -> Any:
    return create_app(db.model_copy(update={"models_dir": models_dir, "models_device": "cpu"}))


@pytest.fixture
def rapi(app: Any, keys: dict[str, str]) -> Any:
    with TestClient(app) as client:
        yield Api(client, keys)


def retrain(models_dir: Path) -> None:
    """What 'arms train' leaves behind, as far as the service can tell: a new date."""
    (models_dir / "split.json").write_text(json.dumps({"trained_at": NEW_DATE}))


def dates(api: Api) -> set[str]:
    return {m["trained_at"] for m in api.get("/v1/models").json()["models"]}


def test_reload_swaps_the_models(rapi, models_dir):
    assert dates(rapi) == {"2026-12-01T10:00:00Z"}
    retrain(models_dir)
    r = rapi.post("/v1/admin/models/reload", scope="write")
    assert r.status_code == 403
    r = rapi.post("/v1/admin/models/reload")
    assert r.status_code == 200, r.text
    assert {m["name"] for m in r.json()["models"]} == set(RECS.values())
    assert dates(rapi) == {"2026-12-02T08:30:00Z"}


def test_an_invalid_directory_keeps_the_old_models(rapi, models_dir):
    rapi.experiment(arms=list(RECS), mode="fuse", recommenders=RECS)
    for arm_json in models_dir.glob("*/arm.json"):
        arm_json.unlink()
    retrain(models_dir)
    r = rapi.post("/v1/admin/models/reload")
    assert r.status_code == 422 and "loaded ones stay" in r.text and "no saved arms" in r.text
    assert dates(rapi) == {"2026-12-01T10:00:00Z"}
    d = rapi.post("/v1/experiments/exp/decisions", {"unit_id": "3"}, scope="write")
    assert d.status_code == 201 and len(d.json()["items"]) == 10


def test_a_directory_missing_a_used_recommender_is_refused(rapi, models_dir):
    rapi.experiment(arms=["a", "b"], recommenders={"a": "mf", "b": "pop"})
    shutil.rmtree(models_dir / "mf")
    retrain(models_dir)
    r = rapi.post("/v1/admin/models/reload")
    assert r.status_code == 409 and "exp: mf" in r.text, r.text
    assert dates(rapi) == {"2026-12-01T10:00:00Z"}
    # once the experiment is stopped, the set without mf is accepted
    r = rapi.post("/v1/experiments/exp/stop")
    assert r.status_code == 200, r.text
    r = rapi.post("/v1/admin/models/reload")
    assert r.status_code == 200 and "mf" not in {m["name"] for m in r.json()["models"]}


async def _decide_while_reloading(app: Any, keys: dict[str, str], n: int, reloads: int) -> Any:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t", timeout=60) as client:
        write = {"Authorization": f"Bearer {keys['write']}"}
        admin = {"Authorization": f"Bearer {keys['admin']}"}

        async def decide(i: int) -> httpx.Response:
            await asyncio.sleep(0.002 * i)  # spread over the reloads
            body = {"unit_id": str(i % 60), "k": 5}
            return await client.post("/v1/experiments/exp/decisions", json=body, headers=write)

        async def reload(j: int) -> httpx.Response:
            await asyncio.sleep(0.03 * j)
            return await client.post("/v1/admin/models/reload", headers=admin)

        return await asyncio.gather(
            asyncio.gather(*(decide(i) for i in range(n))),
            asyncio.gather(*(reload(j) for j in range(reloads))),
        )


def test_reload_under_concurrent_decisions_loses_nothing(app, rapi, keys, session_factory):
    rapi.experiment(arms=list(RECS), mode="fuse", recommenders=RECS)
    n = 120
    decisions, reloads = asyncio.run(_decide_while_reloading(app, keys, n, 4))
    assert [r.status_code for r in reloads] == [200] * 4
    assert [r.status_code for r in decisions] == [201] * n, decisions[0].text
    assert all(len(r.json()["items"]) == 5 for r in decisions)
    with session_factory() as session:
        stored = {d.id: d for d in session.query(Decision)}
    assert set(stored) == {r.json()["decision_id"] for r in decisions}
    assert all(len(d.items) == 5 for d in stored.values())


@pytest.mark.slow
def test_sighup_reloads_a_running_server(db, keys, models_dir, tmp_path):
    if db.database_url is not None:
        pytest.skip("the signal path does not depend on the backend")
    from service.testing import running_server

    with running_server(db, tmp_path / "server.log", models_dir=models_dir) as server:
        auth = {"Authorization": f"Bearer {keys['read']}"}

        def listed() -> set[str]:
            r = httpx.get(f"{server.base_url}/v1/models", headers=auth, timeout=10)
            return {m["trained_at"] for m in r.json()["models"]}

        assert listed() == {"2026-12-01T10:00:00Z"}
        retrain(models_dir)
        os.kill(server.process.pid, signal.SIGHUP)
        deadline = time.monotonic() + 60
        while listed() != {"2026-12-02T08:30:00Z"}:
            assert time.monotonic() < deadline, server.log()[-2000:]
            time.sleep(0.2)
        assert server.process.poll() is None  # reloaded, not terminated
        assert "models reloaded" in server.log()
