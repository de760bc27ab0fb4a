"""GET /api/health: the server answers and how many workers are ready."""
from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from fastapi import APIRouter

from app.dependencies import RunnerDep
from app.schemas import Health

router = APIRouter(prefix="/api/health", tags=["health"])


def _version() -> str:
    try:
        return version("latentmap")
    except PackageNotFoundError:
        return "unknown"


@router.get("", response_model=Health)
def health(runner: RunnerDep) -> Health:
    status = runner.status()
    return Health(version=_version(), backend=status.backend, workers=status.workers,
                  workers_alive=status.workers_alive, workers_ready=status.workers_ready, warm_up=status.warm_up)
