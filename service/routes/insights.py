"""Read side: ``allocation``, ``stats`` and ``health`` of an experiment (read scope)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from service.deps import FailuresDep, KeyPath, ReadKey, in_read_session
from service.routes.responses import KEYED, errors
from service.schemas import AllocationOut, HealthOut, StatsOut
from service.store import insights

router = APIRouter(prefix="/v1/experiments", tags=["insights"])
ERRORS = errors(KEYED, 404)


@router.get("/{key}/allocation", response_model=AllocationOut, responses=ERRORS)
async def read_allocation(key: KeyPath, request: Request, _key: ReadKey) -> AllocationOut:
    """The probability each arm gets at the next decision."""
    return await in_read_session(request, insights.allocation, key)


@router.get("/{key}/stats", response_model=StatsOut, responses=ERRORS)
async def read_stats(key: KeyPath, request: Request, _key: ReadKey) -> StatsOut:
    """Per arm: decisions, clicks, conversions, mean reward with a 95% interval,
    probability of being best, expected loss and current weight."""
    sealed = request.app.state.sealed_counts
    return await in_read_session(request, insights.experiment_stats, key, sealed=sealed)


@router.get("/{key}/health", response_model=HealthOut, responses=ERRORS)
async def read_health(
    key: KeyPath, request: Request, failures: FailuresDep, _key: ReadKey
) -> HealthOut:
    """Sample-ratio-mismatch test of the observed traffic against the logged
    probabilities; pending, late, orphan and duplicate reward counts; last policy update;
    the last failure of background work on this experiment, if any."""
    sealed = request.app.state.sealed_counts
    return await in_read_session(request, insights.health, key, failures.get(key), sealed=sealed)
