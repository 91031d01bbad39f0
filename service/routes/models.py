"""``GET /v1/models``: the recommenders loaded from the models directory (read scope)."""

from __future__ import annotations

from fastapi import APIRouter

from service.deps import ModelsDep, ReadKey
from service.routes.responses import KEYED, errors
from service.schemas import ModelOut, ModelsOut

router = APIRouter(prefix="/v1", tags=["models"])


@router.get("/models", response_model=ModelsOut, responses=errors(KEYED))
async def list_models(models: ModelsDep, _key: ReadKey) -> ModelsOut:
    """The recommenders an experiment may name in ``recommenders``, loaded at start-up from
    the setting ``models_dir`` (``bandit-fusion serve --models DIR``)."""
    return ModelsOut(
        models=[
            ModelOut(name=m.name, arm=m.kind, n_items=m.n_items, trained_at=m.trained_at)
            for m in models.values()
        ]
    )
