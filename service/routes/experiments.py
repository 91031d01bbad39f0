"""``/v1/experiments``: create, list, read, pause, resume, stop (admin scope to change)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status

from service.deps import (
    AdminKey,
    CacheDep,
    KeyPath,
    ModelsDep,
    ReadKey,
    ReadSessionDep,
    SessionDep,
    in_read_session,
    not_covered,
)
from service.routes.responses import BODY, KEYED, errors
from service.schemas import (
    MAX_OFFSET,
    ArmCreate,
    ExperimentCreate,
    ExperimentOut,
    ExperimentPage,
    Status,
)
from service.store import arms as arms_store
from service.store import experiments as store

router = APIRouter(prefix="/v1/experiments", tags=["experiments"])


@router.post(
    "",
    response_model=ExperimentOut,
    status_code=status.HTTP_201_CREATED,
    responses=errors(KEYED, BODY, 409, s409="An experiment with this key already exists."),
)
def create_experiment(
    body: ExperimentCreate, session: SessionDep, models: ModelsDep, _key: AdminKey
) -> ExperimentOut:
    """Create an experiment; the policy is validated by building it, and the recommenders
    it names must be loaded (422 otherwise). A key limited to some experiments may create
    only those."""
    if not _key.covers(body.key):
        raise HTTPException(status.HTTP_403_FORBIDDEN, not_covered(_key, body.key))
    return store.create_experiment(session, body, models)


@router.get("", response_model=ExperimentPage, responses=errors(KEYED))
def list_experiments(
    session: ReadSessionDep,
    _key: ReadKey,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    status: Status | None = None,
) -> ExperimentPage:
    """Experiments in creation order; a key limited to some experiments sees only those."""
    items, total = store.list_experiments(session, limit, offset, status, _key.experiments)
    return ExperimentPage(items=items, total=total, limit=limit, offset=offset)


@router.get("/{key}", response_model=ExperimentOut, responses=errors(KEYED, 404))
async def read_experiment(key: KeyPath, request: Request, _key: ReadKey) -> ExperimentOut:
    return await in_read_session(request, store.get_experiment, key)


def _action(action: str, doc: str) -> None:
    def endpoint(key: KeyPath, session: SessionDep, _key: AdminKey) -> ExperimentOut:
        return store.set_status(session, key, action)

    endpoint.__doc__ = doc
    endpoint.__name__ = f"{action}_experiment"
    router.post(
        f"/{{key}}/{action}",
        response_model=ExperimentOut,
        responses=errors(KEYED, 404, 409, s409="Not allowed from the experiment's status."),
    )(endpoint)


_action("pause", "Pause: decisions get the fallback arm (or 409); rewards are still learned.")
_action("resume", "Resume a paused experiment.")
_action("stop", "Stop for good: decisions get the fallback arm (or 409); nothing more is learned.")


@router.post(
    "/{key}/arms",
    response_model=ExperimentOut,
    status_code=status.HTTP_201_CREATED,
    responses=errors(
        KEYED,
        BODY,
        404,
        409,
        s409="The experiment is stopped, or already has an arm of this name.",
    ),
)
def add_arm(
    key: KeyPath,
    body: ArmCreate,
    session: SessionDep,
    models: ModelsDep,
    cache: CacheDep,
    _key: AdminKey,
) -> ExperimentOut:
    """Add an arm to a running experiment, optionally backed by a loaded recommender
    (required in mode 'fuse'). The policy explores it at once (it has no observations);
    a floor or cap given as one number binds it, a per-arm list gives it none."""
    return arms_store.add_arm(session, key, body, models, cache)


@router.post(
    "/{key}/arms/{arm}/retire",
    response_model=ExperimentOut,
    responses=errors(
        KEYED,
        404,
        409,
        s404="No such experiment or arm.",
        s409="The experiment is stopped, or the arm is already retired.",
    ),
)
def retire_arm(
    key: KeyPath, arm: str, session: SessionDep, cache: CacheDep, _key: AdminKey
) -> ExperimentOut:
    """Retire an arm: it gets no more traffic (allocation 0, never a fused list's source)
    and keeps its decisions, rewards and statistics; rewards still arriving for its earlier
    decisions are stored with status 'retired'. The last active arm and the control arm
    cannot be retired (422). A retired fallback arm hands that role to the control arm, else
    to the first active arm."""
    return arms_store.retire_arm(session, key, arm, cache)
