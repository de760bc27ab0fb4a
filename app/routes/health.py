"""GET /api/health: the server answers, how many workers are ready and (Ray backend) whether the cluster answers."""
from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from fastapi import APIRouter, Request

from app.schemas import ClusterHealth, Health

router = APIRouter(prefix="/api/health", tags=["health"])


def _version() -> str:
    try:
        return version("latentmap")
    except PackageNotFoundError:
        return "unknown"


VERSION = _version()


@router.get("", response_model=Health)
async def health(request: Request) -> Health:
    """Answered on the event loop itself, with no dependency, lock or registry read: a sync handler
    (or a sync dependency) would wait for a free thread-pool slot, and while heavy requests fill the
    pool a monitor asking "are you alive?" would time out on a server that is working fine."""
    status = request.app.state.runner.status()
    cluster = None if status.cluster_address is None else ClusterHealth(
        address=status.cluster_address, reachable=bool(status.cluster_reachable), error=status.cluster_error)
    return Health(version=VERSION, backend=status.backend, workers=status.workers,
                  workers_alive=status.workers_alive, workers_ready=status.workers_ready, warm_up=status.warm_up,
                  cluster=cluster)
