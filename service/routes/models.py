"""``GET /v1/models`` (read scope): the loaded recommenders; ``POST /v1/admin/models/reload``
(admin scope): load the models directory again and swap it in (:mod:`service.model_reload`)."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import APIRouter, HTTPException, Request, status

from service.deps import AdminKey, ModelsDep, ReadKey
from service.model_reload import reload_models
from service.recommenders import Recommender
from service.routes.responses import KEYED, errors
from service.schemas import ModelOut, ModelsOut

router = APIRouter(prefix="/v1", tags=["models"])


def _listed(models: Mapping[str, Recommender]) -> ModelsOut:
    return ModelsOut(
        models=[
            ModelOut(name=m.name, arm=m.kind, n_items=m.n_items, trained_at=m.trained_at)
            for m in models.values()
        ]
    )


@router.get("/models", response_model=ModelsOut, responses=errors(KEYED))
async def list_models(models: ModelsDep, _key: ReadKey) -> ModelsOut:
    """The recommenders an experiment may name in ``recommenders``, loaded at start-up from
    the setting ``models_dir`` (``bandit-fusion serve --models DIR``) or by the last reload."""
    return _listed(models)


@router.post(
    "/admin/models/reload",
    response_model=ModelsOut,
    responses=errors(
        KEYED,
        409,
        s409="No models directory configured, or an experiment that is not stopped names a "
        "recommender missing from it; the loaded models stay.",
        s422="The models directory cannot be loaded; the loaded models stay.",
    ),
)
async def reload(request: Request, _key: AdminKey) -> ModelsOut:
    """Load the models directory again (e.g. after ``bandit-fusion arms train`` wrote new
    arms into it) and swap the new set in without failing decisions in flight: each
    decision is served by the set current when it started, old or new. Answers the new
    list. Reloads only this worker process (``SIGHUP`` reloads every worker). Needs an
    admin key that is not limited to some experiments."""
    if _key.experiments is not None:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "reloading the models needs an admin key not limited to some experiments",
        )
    return _listed(await reload_models(request.app))
