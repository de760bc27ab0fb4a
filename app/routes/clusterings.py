"""A run's clusterings: list them, or queue a new one on the embedding or a projection (202)."""
from __future__ import annotations

from fastapi import APIRouter, HTTPException

from app import catalog, tasks
from app.dependencies import RegistryDep, RunDep, RunnerDep
from app.records import ACTIVE
from app.responses import analysis_out
from app.routes.projections import embedding_dependency
from app.schemas import AnalysisOut, ClusteringCreate, ClusteringCreated, Message, StabilityCreate

router = APIRouter(prefix="/api/runs/{run_id}/clusterings", tags=["clusterings"])


@router.get("", response_model=list[AnalysisOut], responses={404: {"model": Message}})
def clusterings(run: RunDep, registry: RegistryDep) -> list[AnalysisOut]:
    return [analysis_out(c) for c in registry.list_clusterings(run.id)]


@router.post("", response_model=ClusteringCreated, status_code=202,
             responses={404: {"model": Message}, 409: {"model": Message}, 422: {"model": Message}})
def create_clustering(body: ClusteringCreate, run: RunDep, registry: RegistryDep, runner: RunnerDep) -> ClusteringCreated:
    params = catalog.validate_clustering(body.method, body.params)
    if body.on == "embedding":
        depends_on = embedding_dependency(run, registry)
    else:
        projection = registry.get_projection(body.on)
        if projection is None or projection.run_id != run.id:
            raise HTTPException(422, f"on: {body.on!r} is neither 'embedding' nor a projection of run {run.id}")
        if projection.status == "succeeded":
            depends_on = None
        elif projection.status in ACTIVE:
            depends_on = projection.job_id  # wait for the projection to finish
        else:
            raise HTTPException(409, f"on: projection {body.on} {projection.status}; choose a finished projection")
    clustering_id, job = tasks.queue_clustering(registry, run.id, body.method, params, body.on,
                                                int(run.config.get("seed", 0)), depends_on=depends_on)
    runner.submit(job.id)
    return ClusteringCreated(clustering_id=clustering_id, job_id=job.id)


@router.post("/{clustering_id}/stability", response_model=ClusteringCreated, status_code=202,
             responses={404: {"model": Message}, 409: {"model": Message}, 422: {"model": Message}})
def create_stability(clustering_id: str, body: StabilityCreate, run: RunDep, registry: RegistryDep,
                     runner: RunnerDep) -> ClusteringCreated:
    """Rerun the clustering `repeats` times (new seeds, bootstrap samples, same method and parameters,
    same space); when the job succeeds the clustering carries `stability` and the points payload
    (with ?clustering=) `values.stability`."""
    clustering = registry.get_clustering(clustering_id)
    if clustering is None or clustering.run_id != run.id:
        raise HTTPException(404, f"run {run.id} has no clustering {clustering_id!r}")
    if clustering.status != "succeeded":
        raise HTTPException(409, f"clustering {clustering_id} is {clustering.status}; its stability needs it finished")
    job = tasks.queue_stability(registry, run.id, clustering_id, body.repeats, int(run.config.get("seed", 0)))
    runner.submit(job.id)
    return ClusteringCreated(clustering_id=clustering_id, job_id=job.id)
