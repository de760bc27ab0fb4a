"""Annotated dependency aliases shared by the routers (the FastAPI full-stack template's `deps.py`)."""
from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from app.dataset_cache import DatasetCache
from app.jobs import JobRunner
from app.registry import Job, Registry, Run
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


RunDep = Annotated[Run, Depends(get_run)]
JobDep = Annotated[Job, Depends(get_job)]
