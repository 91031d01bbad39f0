"""``/v1/experiments``: create, list, read, pause, resume, stop (admin scope to change)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, status

from service.deps import AdminKey, ReadKey, ReadSessionDep, SessionDep
from service.schemas import ExperimentCreate, ExperimentOut, ExperimentPage, Message, Status
from service.store import experiments as store

router = APIRouter(prefix="/v1/experiments", tags=["experiments"])

ERRORS: dict[int | str, dict[str, Any]] = {401: {"model": Message}, 403: {"model": Message}}


@router.post(
    "",
    response_model=ExperimentOut,
    status_code=status.HTTP_201_CREATED,
    responses={**ERRORS, 409: {"model": Message}, 422: {"model": Message}},
)
def create_experiment(body: ExperimentCreate, session: SessionDep, _key: AdminKey) -> ExperimentOut:
    """Create an experiment; the policy is validated by building it."""
    return store.create_experiment(session, body)


@router.get("", response_model=ExperimentPage, responses=ERRORS)
def list_experiments(
    session: ReadSessionDep,
    _key: ReadKey,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    status: Status | None = None,
) -> ExperimentPage:
    items, total = store.list_experiments(session, limit, offset, status)
    return ExperimentPage(items=items, total=total, limit=limit, offset=offset)


@router.get("/{key}", response_model=ExperimentOut, responses={**ERRORS, 404: {"model": Message}})
def read_experiment(key: str, session: ReadSessionDep, _key: ReadKey) -> ExperimentOut:
    return store.get_experiment(session, key)


def _action(action: str, doc: str) -> None:
    def endpoint(key: str, session: SessionDep, _key: AdminKey) -> ExperimentOut:
        return store.set_status(session, key, action)

    endpoint.__doc__ = doc
    endpoint.__name__ = f"{action}_experiment"
    router.post(
        f"/{{key}}/{action}",
        response_model=ExperimentOut,
        responses={**ERRORS, 404: {"model": Message}, 409: {"model": Message}},
    )(endpoint)


_action("pause", "Pause: decisions get the fallback arm (or 409); rewards are still learned.")
_action("resume", "Resume a paused experiment.")
_action("stop", "Stop for good: decisions get the fallback arm (or 409); nothing more is learned.")
