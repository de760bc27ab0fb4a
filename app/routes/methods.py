"""GET /api/methods: training, projection and clustering methods with their parameter specs."""
from __future__ import annotations

from fastapi import APIRouter, HTTPException, Query

from app import catalog
from app.dataset_source import is_known
from app.dependencies import DatasetCacheDep, RegistryDep, SettingsDep
from app.schemas import Message, Methods

router = APIRouter(prefix="/api/methods", tags=["methods"])


@router.get("", response_model=Methods, responses={422: {"model": Message}})
def methods(registry: RegistryDep, settings: SettingsDep, cache: DatasetCacheDep,
            dataset: str | None = Query(default=None, max_length=4096,
                                        description="give training defaults suited to this dataset")) -> Methods:
    """Every method's parameters; with `dataset`, each training method's defaults for that dataset
    (the tiny 8×8 digits need more epochs than 28 px images, for example)."""
    shape = None
    if dataset is not None:
        if not is_known(dataset, registry, settings.datasets_dir):
            raise HTTPException(422, f"dataset: no dataset named {dataset!r}; GET /api/datasets lists them")
        loaded = cache.get(dataset)
        shape = (loaded.image_shape, len(loaded))
    return Methods.model_validate(catalog.describe_methods(shape))
