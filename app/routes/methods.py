"""GET /api/methods: training, projection and clustering methods with their parameter specs."""
from __future__ import annotations

from fastapi import APIRouter

from app import catalog
from app.schemas import Methods

router = APIRouter(prefix="/api/methods", tags=["methods"])


@router.get("", response_model=Methods)
def methods() -> Methods:
    return Methods.model_validate(catalog.describe_methods())
