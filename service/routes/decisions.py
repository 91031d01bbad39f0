"""``POST /v1/experiments/{key}/decisions``: choose an arm (write scope)."""

from __future__ import annotations

import asyncio
import json

from fastapi import APIRouter, HTTPException, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session, sessionmaker

from service.batching import DirectRanker, MicroBatcher, Ranker
from service.deps import KeyPath, ModelsDep, SettingsDep, WriteKey
from service.routes.responses import BODY, KEYED, errors
from service.schemas import DecisionCreate, DecisionOut
from service.store import decisions
from service.store.common import DECISION_DEADLINE_S
from service.store.decision_groups import DecisionWriter

router = APIRouter(prefix="/v1/experiments", tags=["decisions"])


@router.post(
    "/{key}/decisions",
    response_model=DecisionOut,
    status_code=status.HTTP_201_CREATED,
    responses=errors(
        KEYED,
        BODY,
        404,
        409,
        503,
        s409="Paused or stopped and set to reject.",
        s503=f"The decision took longer than its deadline ({DECISION_DEADLINE_S:g} s from "
        "reading the policy to storing the row): nothing stored, retry it.",
    ),
)
async def decide(
    request: Request,
    key: KeyPath,
    body: DecisionCreate,
    settings: SettingsDep,
    models: ModelsDep,
    _key: WriteKey,
) -> Response:
    """Choose an arm for a unit. The decision (with the probability of every arm and the
    policy version) is committed before the response is sent. A decision whose row cannot
    be stored within 5 s of reading the policy is refused with 503 and stores nothing.

    With items scored live, the header ``X-Batch-Size`` says how many decisions were scored
    together (micro-batching, setting ``decision_batching``); it is absent when every list
    came from the candidate cache (setting ``candidate_cache_depth``)."""
    if body.context is not None:
        size = len(json.dumps(body.context, ensure_ascii=False, separators=(",", ":")).encode())
        if size > settings.max_context_bytes:
            raise HTTPException(
                status.HTTP_413_CONTENT_TOO_LARGE,
                f"context is {size} bytes once encoded, above the limit of "
                f"{settings.max_context_bytes} (setting max_context_bytes)",
            )
    if body.k is not None and body.k > settings.max_k:  # whatever the experiment's arms
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"k is {body.k}, above the configured maximum {settings.max_k} (setting max_k)",
        )
    # Announced to the micro-batcher before anything else, so that a batch waits for this
    # decision's lists (withdrawn when done: a plain decision never scores).
    batcher: MicroBatcher | None = request.app.state.batcher
    ticket = batcher.announce() if batcher is not None else None
    ranker: Ranker = DirectRanker() if batcher is None else batcher.ranker(ticket)
    serving = decisions.Serving(models, settings.default_k, settings.max_k, ranker)
    writer: DecisionWriter | None = request.app.state.decision_writer
    try:
        if writer is None:
            # In the threadpool on both backends: the event loop never waits for the
            # database (on SQLite a decision may queue behind another writer's transaction).
            # (scoring the items too: never on the event loop)
            factory = request.app.state.sessionmaker
            out = await run_in_threadpool(_decide, factory, key, body, serving)
        else:
            # Grouped (setting decision_group_commit): the writer's thread reads, draws and
            # stores this decision with the others queued meanwhile; the answer comes after
            # the commit. No threadpool thread waits meanwhile.
            # An experiment whose arms have recommenders is scored here (read session: on
            # SQLite the write connection belongs to the writer) and stored through the
            # group; once the writer has said so, its decisions come here directly.
            scored: set[str] = request.app.state.scored_keys
            grouped = None
            if key not in scored:
                grouped = await asyncio.wrap_future(writer.decide(key, body))
            if grouped is None:
                scored.add(key)
                factory = request.app.state.read_sessionmaker
                grouped = await run_in_threadpool(_decide, factory, key, body, serving, writer)
            out = grouped
    finally:
        if batcher is not None and ticket is not None:
            batcher.withdraw(ticket)
    # serialised here (still documented by response_model): skips FastAPI re-validating it
    headers = {"X-Batch-Size": str(ranker.batch_size)} if ranker.batch_size else None
    return Response(
        out.model_dump_json(), status_code=201, media_type="application/json", headers=headers
    )


def _decide(
    factory: sessionmaker[Session],
    key: str,
    body: DecisionCreate,
    serving: decisions.Serving,
    writer: DecisionWriter | None = None,
) -> DecisionOut:
    with factory() as session:
        return decisions.decide(session, key, body, serving, writer)
