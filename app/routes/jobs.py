"""Jobs: status, live progress (server-sent events), cancel and resume."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, AsyncIterator

import anyio
from fastapi import APIRouter, HTTPException, Request
from sse_starlette import EventSourceResponse

from app.dependencies import JobDep, RegistryDep, RunnerDep
from app.records import FINISHED
from app.responses import job_out
from app.schemas import JobOut, Message

router = APIRouter(prefix="/api/jobs", tags=["jobs"])

EVENT_POLL_SECONDS = 0.25
RESUMABLE = ("interrupted", "cancelled", "failed")


@router.get("/{job_id}", response_model=JobOut, responses={404: {"model": Message}})
def job(job: JobDep) -> JobOut:
    return job_out(job)


@router.get("/{job_id}/events", responses={200: {"content": {"text/event-stream": {}}}, 404: {"model": Message}})
async def job_events(job: JobDep, registry: RegistryDep, request: Request) -> EventSourceResponse:
    """`progress` events ({id, status, progress, metrics}) whenever the job changes, then one `end` event
    with the whole job; the stream closes when the job has finished."""

    async def stream() -> AsyncIterator[dict[str, Any]]:
        last: dict[str, Any] | None = None
        while True:
            current = await anyio.to_thread.run_sync(registry.get_job, job.id)
            if current is None:  # the run was deleted
                return
            payload = {"id": current.id, "status": current.status, "progress": current.progress,
                       "metrics": current.metrics or {}}
            if payload != last:
                yield {"event": "progress", "data": json.dumps(payload)}
                last = payload
            if current.status in FINISHED:
                yield {"event": "end", "data": job_out(current).model_dump_json()}
                return
            if await request.is_disconnected():
                return
            await anyio.sleep(EVENT_POLL_SECONDS)

    return EventSourceResponse(stream(), ping=15)


@router.post("/{job_id}/cancel", response_model=JobOut, status_code=202,
             responses={404: {"model": Message}, 409: {"model": Message}})
def cancel_job(job: JobDep, registry: RegistryDep, runner: RunnerDep) -> JobOut:
    """Ask the job to stop: a queued job is cancelled at once; a running one stops at its next
    progress report (its finished artifacts stay), or is stopped by force after a few seconds."""
    try:
        runner.cancel(job.id)
    except ValueError as exc:
        raise HTTPException(409, str(exc)) from None
    current = registry.get_job(job.id)
    assert current is not None
    return job_out(current)


@router.post("/{job_id}/resume", response_model=JobOut, status_code=202,
             responses={404: {"model": Message}, 409: {"model": Message}})
def resume_job(job: JobDep, registry: RegistryDep, runner: RunnerDep) -> JobOut:
    """Continue an interrupted (or cancelled / failed) training job from its last checkpoint."""
    if job.kind != "train":
        raise HTTPException(409, f"only training jobs can be resumed; job {job.id} is a {job.kind} job")
    if job.status not in RESUMABLE:
        raise HTTPException(409, f"job {job.id} is {job.status}; only {', '.join(RESUMABLE)} jobs can be resumed")
    run = registry.get_run(job.run_id)
    if run is None or not (Path(run.run_dir) / "checkpoint.pt").exists():
        raise HTTPException(409, f"job {job.id} has no checkpoint to resume from (no epoch finished); start a new run")
    resumed = registry.requeue_job(job.id, {**job.params, "resume": True})
    runner.submit(resumed.id)
    return job_out(resumed)
