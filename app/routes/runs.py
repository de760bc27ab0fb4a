"""Runs: start training (202 + job), list, show and delete runs."""
from __future__ import annotations

import shutil
from pathlib import Path

from fastapi import APIRouter, HTTPException, Response

from app import catalog, imports, tasks
from app.dataset_source import is_known
from app.dependencies import (
    DatasetCacheDep,
    RegistryDep,
    RunDep,
    RunnerDep,
    SettingsDep,
)
from app.heavy import heavy
from app.records import ACTIVE
from app.responses import run_detail, run_summary
from app.schemas import Message, RunCreate, RunCreated, RunDetail, RunSummary

router = APIRouter(prefix="/api/runs", tags=["runs"])


@router.post("", response_model=RunCreated, status_code=202,
             responses={404: {"model": Message}, 422: {"model": Message}})
@heavy
def create_run(body: RunCreate, registry: RegistryDep, runner: RunnerDep, settings: SettingsDep,
               cache: DatasetCacheDep) -> RunCreated:
    """Record a run and its training job, then queue it; after training, a projection (UMAP) and a
    clustering (k-means) with default parameters are queued automatically."""
    if body.method not in catalog.training_methods():
        raise HTTPException(422, f"unknown method {body.method!r}; choose one of {', '.join(catalog.training_methods())}")
    if not is_known(body.dataset, registry, settings.datasets_dir):
        raise HTTPException(422, f"dataset: no dataset named {body.dataset!r}; GET /api/datasets lists them")
    dataset = cache.get(body.dataset)
    given = {name: getattr(body, name) for name in catalog.TRAIN_FIELDS}
    config = catalog.train_config(body.dataset, body.method, dataset.image_shape, len(dataset), given, body.method_params)
    run_id, job = tasks.queue_training(
        registry, config, settings.data_dir,
        follow_ups={"projection": settings.default_projection, "clustering": settings.default_clustering})
    runner.submit(job.id)
    return RunCreated(run_id=run_id, job_id=job.id)


@router.get("", response_model=list[RunSummary])
def runs(registry: RegistryDep) -> list[RunSummary]:
    return [run_summary(run) for run in registry.list_runs()]


@router.get("/{run_id}", response_model=RunDetail, responses={404: {"model": Message}})
def run(run: RunDep, registry: RegistryDep) -> RunDetail:
    return run_detail(run, registry)


@router.delete("/{run_id}", status_code=204, response_class=Response,
               responses={404: {"model": Message}, 409: {"model": Message}})
def delete_run(run: RunDep, registry: RegistryDep) -> Response:
    active = registry.list_jobs(run_id=run.id, statuses=ACTIVE)
    if active:
        raise HTTPException(409, f"run {run.id} has a {active[0].kind} job {active[0].status} ({active[0].id});"
                                 f" cancel it first (POST /api/jobs/{active[0].id}/cancel)")
    registry.delete_run(run.id)
    shutil.rmtree(Path(run.run_dir), ignore_errors=True)
    imports.forget_images(registry, run.id)  # an import's own images go with it
    return Response(status_code=204)
