"""A run's projections: list them, or queue a new one (202)."""
from __future__ import annotations

from fastapi import APIRouter, HTTPException

from app import catalog, tasks
from app.dependencies import RegistryDep, RunDep, RunnerDep
from app.records import ACTIVE, Run
from app.registry import Registry
from app.responses import analysis_out
from app.schemas import AnalysisOut, Message, ProjectionCreate, ProjectionCreated

router = APIRouter(prefix="/api/runs/{run_id}/projections", tags=["projections"])


def embedding_dependency(run: Run, registry: Registry) -> str | None:
    """The job to wait for before analysing the run's embedding (None when it exists); 409 when it never will."""
    if run.status == "succeeded":
        return None
    if run.status in ACTIVE and run.job_id:
        return run.job_id
    raise HTTPException(409, f"run {run.id} has no embedding: its training {run.status}; resume or retrain it first")


@router.get("", response_model=list[AnalysisOut], responses={404: {"model": Message}})
def projections(run: RunDep, registry: RegistryDep) -> list[AnalysisOut]:
    return [analysis_out(p) for p in registry.list_projections(run.id)]


@router.post("", response_model=ProjectionCreated, status_code=202,
             responses={404: {"model": Message}, 409: {"model": Message}, 422: {"model": Message}})
def create_projection(body: ProjectionCreate, run: RunDep, registry: RegistryDep, runner: RunnerDep) -> ProjectionCreated:
    params = catalog.validate_projection(body.method, body.params)
    depends_on = embedding_dependency(run, registry)
    projection_id, job = tasks.queue_projection(registry, run.id, body.method, params, int(run.config.get("seed", 0)),
                                                depends_on=depends_on)
    runner.submit(job.id)
    return ProjectionCreated(projection_id=projection_id, job_id=job.id)
