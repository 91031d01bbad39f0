"""``/v1/experiments/{key}/rewards``: clicks and conversions, one or a batch (write scope)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session, sessionmaker

from service.deps import CacheDep, KeyPath, SessionmakerDep, SettingsDep, WriteKey
from service.policies import PolicyCache
from service.routes.responses import BODY, KEYED, errors
from service.schemas import RewardBatch, RewardBatchOut, RewardCreate, RewardOut, Text
from service.store import rewards as store
from service.store.reward_groups import RewardWriter

router = APIRouter(prefix="/v1/experiments", tags=["rewards"])

ERRORS: dict[int | str, dict[str, Any]] = errors(
    KEYED,
    BODY,
    404,
    s404="Unknown experiment, or (single reward) unknown decision.",
    s422="Invalid input, a value the policy cannot learn, or a key reused with another body.",
)


@router.post("/{key}/rewards", response_model=RewardOut, responses=ERRORS)
async def post_reward(
    request: Request,
    key: KeyPath,
    body: RewardCreate,
    response: Response,
    factory: SessionmakerDep,
    cache: CacheDep,
    _key: WriteKey,
    idempotency_key: Annotated[
        Text | None, Header(alias="Idempotency-Key", min_length=1, max_length=200)
    ] = None,
) -> RewardOut:
    """Record one reward. Sending the same ``Idempotency-Key`` (or ``reward_id``) again
    counts once and returns the first response (with ``replayed: true``); the same key with
    a different body is a 422. A reward for an unknown decision is kept as an orphan and
    answered with 404, as is one naming an item (``item_id`` or ``position``) that its
    decision did not show (status ``unshown``). For a decision with items, the named item's
    source arm is credited. The reward is committed before the answer; concurrent single
    rewards of one experiment may share a transaction and a policy update (setting
    ``reward_group_commit``), each still answered with its own result."""
    k = idempotency_key or body.reward_id or uuid.uuid4().hex
    writer: RewardWriter | None = request.app.state.reward_writer
    if writer is not None:  # grouped with the rewards queued meanwhile (setting)
        result = await asyncio.wrap_future(writer.record(key, k, body))
    else:
        results, _ = await run_in_threadpool(_record, factory, key, [(k, body)], cache)
        result = results[0]
    if result.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    if result.status == "orphan":
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"no decision {body.decision_id!r} in experiment {key!r} (kept as an orphan reward)",
        )
    if result.status == "unshown":
        what = f"item {body.item_id}" if body.item_id is not None else f"position {body.position}"
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"{what} was not shown in decision {body.decision_id!r} (kept as an unshown reward, "
            "not learned)",
        )
    return result


@router.post("/{key}/rewards/batch", response_model=RewardBatchOut, responses=ERRORS)
async def post_rewards(
    key: KeyPath,
    body: RewardBatch,
    factory: SessionmakerDep,
    cache: CacheDep,
    settings: SettingsDep,
    _key: WriteKey,
) -> RewardBatchOut:
    """Record many rewards in one transaction and one policy update. Each item's
    ``reward_id`` is its idempotency key; results come back in order with a status each
    (unknown decisions are kept as orphans rather than failing the batch). If any key is
    reused with a different body the whole batch is rejected and nothing is stored."""
    if len(body.rewards) > settings.max_batch_size:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"a batch holds at most {settings.max_batch_size} rewards, got {len(body.rewards)} "
            "(setting max_batch_size)",
        )
    items = [(r.reward_id or uuid.uuid4().hex, r) for r in body.rewards]
    results, version = await run_in_threadpool(_record, factory, key, items, cache)
    learned = sum(1 for r in results if r.status == "learned" and not r.replayed)
    return RewardBatchOut(results=results, learned=learned, policy_version=version)


def _record(
    factory: sessionmaker[Session],
    key: str,
    items: list[tuple[str, RewardCreate]],
    cache: PolicyCache,
) -> tuple[list[RewardOut], int]:
    with factory() as session:
        return store.record_rewards(session, key, items, cache)
