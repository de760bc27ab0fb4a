"""A run's epoch timeline: its training snapshots projected into one aligned sequence of maps."""
from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from app import run_files, tasks
from app.dependencies import RegistryDep, RunDep, RunnerDep
from app.heavy import heavy
from app.schemas import JobStatus, Message
from ml.analysis.timeline import MIN_SNAPSHOTS, load_timeline
from ml.snapshots import list_snapshots

router = APIRouter(prefix="/api/runs/{run_id}/timeline", tags=["timeline"])


class TimelineCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: Literal["tsne", "umap"] = Field(description="tsne: each snapshot's t-SNE starts from the previous frame;"
                                                        " umap: AlignedUMAP over all snapshots")


class TimelineCreated(BaseModel):
    run_id: str
    job_id: str


class TimelineFrame(BaseModel):
    epoch: int
    x: str = Field(description="base64 of little-endian float32, one value per point")
    y: str = Field(description="base64 of little-endian float32, one value per point")
    knn_accuracy: float | None = Field(description="kNN accuracy of the embedding at this epoch; null without labels")


class Timeline(BaseModel):
    status: JobStatus
    method: str
    job_id: str
    error: str | None = None
    frames: list[TimelineFrame] = Field(description="in epoch order; empty until the job has succeeded")


@router.post("", response_model=TimelineCreated, status_code=202,
             responses={404: {"model": Message}, 409: {"model": Message}, 422: {"model": Message}})
def create_timeline(body: TimelineCreate, run: RunDep, registry: RegistryDep, runner: RunnerDep) -> TimelineCreated:
    """Queue the projection of the run's epoch snapshots into aligned frames (GET follows it)."""
    if run.status != "succeeded":
        raise HTTPException(409, f"run {run.id} has no epoch snapshots yet: its training is {run.status}")
    count = len(list_snapshots(Path(run.run_dir)))
    if count < MIN_SNAPSHOTS:
        raise HTTPException(409, f"run {run.id} has {count} epoch snapshot(s); a timeline needs at least {MIN_SNAPSHOTS}:"
                                 " train a run with snapshots >= 2 (the default is 8; POST /api/runs {\"snapshots\": 8}"
                                 " or latentmap train --snapshots 8)")
    job = tasks.queue_timeline(registry, run.id, body.method, int(run.config.get("seed", 0)))
    runner.submit(job.id)
    return TimelineCreated(run_id=run.id, job_id=job.id)


@router.get("", response_model=Timeline, responses={404: {"model": Message}})
@heavy
def timeline(run: RunDep, registry: RegistryDep) -> Timeline:
    """The newest timeline asked for: its job's status and, once it has succeeded, every frame."""
    jobs = [job for job in registry.list_jobs(run_id=run.id) if job.kind == "timeline"]
    if not jobs:
        raise HTTPException(404, f"run {run.id} has no timeline; POST /api/runs/{run.id}/timeline asks for one")
    job = jobs[-1]
    frames: list[TimelineFrame] = []
    stored = load_timeline(Path(run.run_dir), job.id) if job.status == "succeeded" else None
    if stored is not None:
        frames = [TimelineFrame(epoch=int(epoch), x=run_files.b64(coords[:, 0], "<f4"), y=run_files.b64(coords[:, 1], "<f4"),
                                knn_accuracy=None if np.isnan(accuracy) else float(accuracy))
                  for epoch, coords, accuracy in zip(stored["epochs"], stored["coords"], stored["knn_accuracy"])]
    return Timeline(status=job.status, method=job.params["method"], job_id=job.id, error=job.error,  # type: ignore[arg-type]
                    frames=frames)
