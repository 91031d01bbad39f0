"""Schemathesis over every route of the OpenAPI document, on both backends.

Each operation gets positive (schema-valid) and negative (schema-violating) generated
requests, sent in-process with a valid API key; half of the keyed requests name an existing
experiment so that they reach the store instead of stopping at 404. Every response must be
no server error, have a documented status and content type, and match its documented body
schema. The test counts what it sent and fails under ``MIN_REQUESTS``.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from service.app import create_app
from service.settings import Settings
from tests.service.conftest import Api

pytestmark = pytest.mark.slow

EXAMPLES = 45  # per operation and generation mode
MIN_REQUESTS = 1000
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXISTING = ["exp", "gauss"]


def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    db: Settings, keys: dict[str, str], backend: str
) -> None:
    app = create_app(db)
    with TestClient(app) as client:
        api = Api(client, keys)
        api.experiment("exp", reward={"click": 1, "conversion": 5})
        api.experiment("gauss", policy="gaussian-thompson")
        for key in EXISTING:
            api.decide(key)
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        sent: Counter[int] = Counter()
        operations = [op.ok() for op in schema.get_all_operations()]
        assert len(operations) >= 13
        with asgi.get_client(app) as session:
            for operation in operations:
                for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                    _fuzz(operation, mode, session, keys["admin"], sent)
    total = sum(sent.values())
    print(f"\nschemathesis on {backend}: {total} requests, statuses {dict(sorted(sent.items()))}")
    assert total >= MIN_REQUESTS
    assert 201 in sent and 200 in sent  # requests got through to the store, not only refusals


def _fuzz(operation: Any, mode: GenerationMode, session: Any, key: str, sent: Counter[int]) -> None:
    has_key = any(p.name == "key" for p in operation.path_parameters)

    targets = st.one_of(st.none(), st.sampled_from(EXISTING))

    @given(case=operation.as_strategy(generation_mode=mode), target=targets)
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any, target: str | None) -> None:
        if has_key and mode is GenerationMode.POSITIVE and target is not None:
            case.path_parameters = {**(case.path_parameters or {}), "key": target}
        headers = {"Authorization": f"Bearer {key}"}
        response = case.call(session=session, headers=headers)
        sent[response.status_code] += 1
        case.validate_response(response, checks=CHECKS, headers=headers)

    try:
        run()
    except Unsatisfiable:
        # an operation without parameters or body has nothing a negative case could break
        if mode is GenerationMode.POSITIVE or operation.path_parameters or operation.body:
            raise
