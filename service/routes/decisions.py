"""``POST /v1/experiments/{key}/decisions``: choose an arm (write scope)."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session, sessionmaker

from service.deps import SessionmakerDep, WriteKey
from service.schemas import DecisionCreate, DecisionOut, Message
from service.store import decisions

router = APIRouter(prefix="/v1/experiments", tags=["decisions"])


@router.post(
    "/{key}/decisions",
    response_model=DecisionOut,
    status_code=status.HTTP_201_CREATED,
    responses={
        401: {"model": Message},
        403: {"model": Message},
        404: {"model": Message},
        409: {"model": Message, "description": "paused/stopped and configured to reject"},
    },
)
async def decide(
    key: str, body: DecisionCreate, factory: SessionmakerDep, _key: WriteKey
) -> Response:
    """Choose an arm for a unit. The decision (with the probability of every arm and the
    policy version) is committed before the response is sent."""
    # In the threadpool on both backends: the event loop never waits for the database (on
    # SQLite a decision may queue behind another writer's transaction).
    out = await run_in_threadpool(_decide, factory, key, body)
    # serialised here (still documented by response_model): skips FastAPI re-validating it
    return Response(out.model_dump_json(), status_code=201, media_type="application/json")


def _decide(factory: sessionmaker[Session], key: str, body: DecisionCreate) -> DecisionOut:
    with factory() as session:
        return decisions.decide(session, key, body)
