"""Annotated dependency aliases shared by the routers (the FastAPI full-stack template's `deps.py`)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from app.dataset_cache import DatasetCache
from app.jobs import JobRunner
from app.records import Job, Run
from app.registry import Registry
from app.settings import Settings, get_settings


def get_registry(request: Request) -> Registry:
    return request.app.state.registry


def get_runner(request: Request) -> JobRunner:
    return request.app.state.runner


def get_dataset_cache(request: Request) -> DatasetCache:
    return request.app.state.datasets


SettingsDep = Annotated[Settings, Depends(get_settings)]
RegistryDep = Annotated[Registry, Depends(get_registry)]
RunnerDep = Annotated[JobRunner, Depends(get_runner)]
DatasetCacheDep = Annotated[DatasetCache, Depends(get_dataset_cache)]


def get_run(run_id: str, registry: RegistryDep) -> Run:
    run = registry.get_run(run_id)
    if run is None:
        raise HTTPException(404, f"no run with id {run_id!r}; GET /api/runs lists them")
    return run


def get_job(job_id: str, registry: RegistryDep) -> Job:
    job = registry.get_job(job_id)
    if job is None:
        raise HTTPException(404, f"no job with id {job_id!r}")
    return job


def trained_point(run: Run, index: int, missing: str) -> tuple[Path, int]:
    """The run directory and point count of a finished run that has point `index`: 409 (saying the
    run has no `missing` yet) while it has no embedding, 404 for an index outside it."""
    from app import run_files

    run_dir = Path(run.run_dir)
    shape = run_files.embedding_shape(run_dir)
    if run.status != "succeeded" or shape is None:
        raise HTTPException(409, f"run {run.id} has no {missing} yet (status {run.status})")
    if not 0 <= index < shape[0]:
        raise HTTPException(404, f"run {run.id} has points 0..{shape[0] - 1}, not {index}")
    return run_dir, shape[0]


RunDep = Annotated[Run, Depends(get_run)]
JobDep = Annotated[Job, Depends(get_job)]
