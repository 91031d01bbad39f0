"""Bad input answers 4xx with a message and changes nothing stored (both backends).

Each case is a request that once answered 500, was stored although invalid, or had no size
limit (issue 12). The store is snapshotted (every row of every table) before and after the
request; the two snapshots must be equal, and the service must keep answering afterwards.
Bodies are sent as raw text so that NaN, Infinity and lone surrogates reach the server as a
client could send them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.app import create_app
from service.models import Base
from service.settings import Settings
from tests.service.conftest import Api

MAX_BODY = 64 * 1024
MAX_CONTEXT = 2048
MAX_BATCH = 20


@dataclass(frozen=True)
class Case:
    """One bad request: ``body`` is raw JSON text, or a callable of the set-up's ids."""

    id: str
    method: str
    url: str
    body: str | Callable[[dict[str, str]], str] | None
    status: int
    message: str  # a part of the answer's ``detail``
    scope: str = "admin"
    headers: tuple[tuple[str, str], ...] = ()


def _create(**fields: str) -> str:
    """An experiment body with ``fields`` spliced in as raw JSON values."""
    base = {"key": '"bad"', "arms": '["a", "b"]', "policy": '"thompson"'}
    base.update(fields)
    return "{" + ", ".join(f'"{k}": {v}' for k, v in base.items()) + "}"


def _decision(**fields: str) -> str:
    base = {"unit_id": '"u"'}
    base.update(fields)
    return "{" + ", ".join(f'"{k}": {v}' for k, v in base.items()) + "}"


def _reward(decision: str = "d", **fields: str) -> Callable[[dict[str, str]], str]:
    def body(ids: dict[str, str]) -> str:
        base = {"decision_id": json.dumps(ids[decision])}
        base.update(fields)
        return "{" + ", ".join(f'"{k}": {v}' for k, v in base.items()) + "}"

    return body


EXP = "/v1/experiments"
DEC = "/v1/experiments/exp/decisions"
REW = "/v1/experiments/exp/rewards"
CASES = [
    Case("window-1e300", "POST", EXP, _create(reward_window_s="1e300"), 422, "reward_window_s"),
    Case("window-inf", "POST", EXP, _create(reward_window_s="Infinity"), 422, "reward_window_s"),
    Case("window-nan", "POST", EXP, _create(reward_window_s="NaN"), 422, "reward_window_s"),
    Case("arm-lone-surrogate", "POST", EXP, _create(arms='["a", "\\ud800"]'), 422, "surrogate"),
    Case("arm-nul", "POST", EXP, _create(arms='["a", "b\\u0000"]'), 422, "NUL"),
    Case("name-nul", "POST", EXP, _create(name='"x\\u0000y"'), 422, "NUL"),
    Case("policy-nul", "POST", EXP, _create(policy='"thomp\\u0000son"'), 422, "policy"),
    Case("burn-in-2**31", "POST", EXP, _create(burn_in=str(2**31)), 422, "burn_in"),
    Case("burn-in-1e300", "POST", EXP, _create(burn_in="1e300"), 422, "burn_in"),
    Case("seed-2**63", "POST", EXP, _create(seed=str(2**63)), 422, "seed"),
    Case("reward-def-1e308", "POST", EXP, _create(reward='{"click": 1e308}'), 422, "reward"),
    Case("floors-nan", "POST", EXP, _create(floors="NaN"), 422, "floors"),
    Case("params-nan", "POST", EXP, _create(params='{"prior_a": NaN}'), 422, "params"),
    Case("params-nul", "POST", EXP, _create(params='{"x\\u0000": 1}'), 422, "params"),
    Case(
        "params-int-overflow",
        "POST",
        EXP,
        _create(policy='"top-two-thompson"', params=f'{{"max_resamples": {2**70}}}'),
        422,
        "max_resamples",
    ),
    Case("unit-nul", "POST", DEC, _decision(unit_id='"u\\u0000"'), 422, "NUL", "write"),
    Case("unit-surrogate", "POST", DEC, _decision(unit_id='"\\udc00"'), 422, "unit_id", "write"),
    Case("context-nan", "POST", DEC, _decision(context='{"x": NaN}'), 422, "context", "write"),
    Case(
        "context-inf", "POST", DEC, _decision(context='{"x": [-Infinity]}'), 422, "context", "write"
    ),
    Case(
        "context-key-surrogate",
        "POST",
        DEC,
        _decision(context='{"\\ud800": 1}'),
        422,
        "context",
        "write",
    ),
    Case(
        "context-nul",
        "POST",
        DEC,
        _decision(context='{"x": {"y": "\\u0000"}}'),
        422,
        "NUL",
        "write",
    ),
    Case(
        "context-too-large",
        "POST",
        DEC,
        _decision(context=json.dumps({"x": "y" * (MAX_CONTEXT + 1)})),
        413,
        "context",
        "write",
    ),
    Case("served-nul", "POST", DEC, _decision(served_items='["\\u0000"]'), 422, "NUL", "write"),
    Case("reward-nan", "POST", REW, _reward(value="NaN"), 422, "value", "write"),
    Case("reward-inf", "POST", REW, _reward(value="Infinity"), 422, "value", "write"),
    Case("reward-above-max", "POST", REW, _reward(value="2"), 422, "outside", "write"),
    Case(
        "gaussian-reward-1e308",
        "POST",
        "/v1/experiments/gauss/rewards",
        _reward("g", value="1e308"),
        422,
        "reward",
        "write",
    ),
    Case(
        "gaussian-batch-1e200",
        "POST",
        "/v1/experiments/gauss/rewards/batch",
        lambda ids: json.dumps(
            {"rewards": [{"decision_id": ids["g"], "value": 1e200, "reward_id": "r1"}]}
        ),
        422,
        "reward",
        "write",
    ),
    Case("reward-decision-nul", "POST", REW, '{"decision_id": "d\\u0000"}', 422, "NUL", "write"),
    Case("reward-item-nul", "POST", REW, _reward(item='"\\u0000"'), 422, "NUL", "write"),
    Case(
        "reward-id-surrogate",
        "POST",
        REW,
        _reward(reward_id='"\\ud800"'),
        422,
        "reward_id",
        "write",
    ),
    Case(
        "batch-too-long",
        "POST",
        REW + "/batch",
        lambda ids: json.dumps(
            {
                "rewards": [
                    {"decision_id": ids["d"], "reward_id": f"r{i}"} for i in range(MAX_BATCH + 1)
                ]
            }
        ),
        413,
        "batch",
        "write",
    ),
    Case(
        "body-too-large",
        "POST",
        DEC,
        _decision(context=json.dumps({"x": "y" * MAX_BODY})),
        413,
        "body",
        "write",
    ),
    Case("offset-2**63", "GET", EXP + f"?offset={2**63}", None, 422, "offset", "read"),
    Case("limit-2**63", "GET", EXP + f"?limit={2**63}", None, 422, "limit", "read"),
    Case(
        "path-key-nul",
        "POST",
        "/v1/experiments/a%00b/decisions",
        '{"unit_id": "u"}',
        422,
        "key",
        "write",
    ),
    Case("path-key-nul-read", "GET", "/v1/experiments/a%00b/stats", None, 422, "key", "read"),
    Case("not-json", "POST", DEC, "{unit_id: u}", 422, "JSON", "write"),
]


def snapshot(settings: Settings) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in primary-key order."""
    from service.db import make_engine

    engine = make_engine(settings)
    out: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            rows = conn.execute(select(table).order_by(*table.primary_key.columns)).all()
            out[table.name] = [tuple(r) for r in rows]
        conn.rollback()
    engine.dispose()
    return out


@pytest.fixture
def small(db: Settings, keys: dict[str, str]) -> Iterator[tuple[Api, Settings, dict[str, str]]]:
    """A client with small limits, an experiment of each kind and one decision in each."""
    settings = db.model_copy(
        update={
            "max_body_bytes": MAX_BODY,
            "max_context_bytes": MAX_CONTEXT,
            "max_batch_size": MAX_BATCH,
        }
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        api = Api(client, keys)
        api.experiment("exp", reward={"click": 1})
        api.experiment("gauss", policy="gaussian-thompson")
        ids = {"d": api.decide("exp")["decision_id"], "g": api.decide("gauss")["decision_id"]}
        yield api, settings, ids


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_refused_and_changes_nothing(small, case: Case) -> None:
    api, settings, ids = small
    before = snapshot(settings)
    body = case.body(ids) if callable(case.body) else case.body
    headers = {**api.h(case.scope), "Content-Type": "application/json", **dict(case.headers)}
    r = api.client.request(case.method, case.url, content=body, headers=headers)
    assert r.status_code == case.status, r.text
    detail = r.json()["detail"]
    assert isinstance(detail, str) and case.message.lower() in detail.lower(), detail
    assert snapshot(settings) == before
    # the service still answers everyone
    assert api.get("/v1/experiments").status_code == 200
    for key in ("exp", "gauss"):
        assert api.get(f"/v1/experiments/{key}/stats").status_code == 200
        assert all(
            v is not None
            for v in api.get(f"/v1/experiments/{key}/allocation").json()["allocation"].values()
        )
        api.decide(key)


def _chunks(data: bytes, size: int = 4096) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def test_streamed_body_without_length_is_cut_at_the_limit(small) -> None:
    """A chunked body (no Content-Length) is counted as it arrives and refused with 413."""
    api, settings, _ = small
    before = snapshot(settings)
    data = json.dumps({"unit_id": "u", "context": {"x": "y" * (4 * MAX_BODY)}}).encode()
    r = api.client.post(
        DEC, content=_chunks(data), headers={**api.h("write"), "Content-Type": "application/json"}
    )
    assert r.status_code == 413 and "body" in r.json()["detail"], r.text
    assert snapshot(settings) == before
