"""The Ray backend: every latentmap job runs as one Ray job, submitted through Ray's Jobs API.

The SQLite registry stays the queue and the source of truth. A monitor thread in the server takes
the oldest queued job when the cluster has room (fewer than `max_jobs` Ray jobs in flight and none of
them still waiting for resources), marks it running and submits a Ray job whose entrypoint,
`python -m app.jobs.ray_entry`, runs the same `app.tasks.run_job` a local worker runs. That process
writes progress, reads cancel requests and records the job's end in the registry itself, so job
rows, the SSE stream and cooperative cancel are the same code as with local workers. The server
never becomes a Ray driver (no ray.init): it only speaks HTTP to the job server (JobSubmissionClient).

The monitor follows the Ray jobs it submitted: one that ends without having recorded its end (its
process killed, stopped from outside, its node lost) makes the job failed with Ray's message; a job
that ignores a cancel for `cancel_grace` seconds is stopped (stop_job) and marked cancelled. Ray jobs
outlive the server: at the next start the runner re-attaches to those still running for this
registry and marks the other jobs left running (no Ray job, no live local process) interrupted.

Every node must see the data directory (registry and run directories) at the same path.
"""
from __future__ import annotations

import logging
import os
import shlex
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ray.job_submission import JobDetails, JobStatus, JobSubmissionClient

from app.jobs.base import JobRunner, RunnerStatus
from app.jobs.local import exit_reason
from app.processes import job_process_alive
from app.records import Job
from app.registry import Registry

log = logging.getLogger("latentmap.jobs.ray")
MONITOR_SECONDS = 0.5
# Ray job metadata naming the latentmap job and the registry it belongs to, so that one cluster can
# serve several latentmap servers and a restarted server finds its own jobs.
JOB_KEY, REGISTRY_KEY = "latentmap_job", "latentmap_registry"
# What ends an unreachable cluster's call: requests' errors are OSErrors, Ray raises ConnectionError
# or RuntimeError (e.g. an HTTP error status from the job server).
CLUSTER_ERRORS = (OSError, RuntimeError, ValueError)
INTERRUPTED = "the process running this job stopped (server restart)"


def cluster_problem(address: str) -> str | None:
    """None when the Ray job server at `address` answers, else the reason in one line."""
    try:
        JobSubmissionClient(address)
    except CLUSTER_ERRORS as exc:
        return _one_line(exc)
    return None


def _one_line(exc: BaseException | str, limit: int = 300) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:limit]


def ray_reason(details: JobDetails) -> str:
    """Ray's word on how a job ended, in one line: its message without the log tail it announces,
    and the signal that ended the process (a shell's exit code 128 + N is signal N)."""
    reason = _one_line(details.message or f"status {details.status}").split(", last available logs")[0]
    code = getattr(details, "driver_exit_code", None)  # reported since Ray 2.4x
    if code is not None and code > 128:
        reason += f": {exit_reason(128 - code)}"
    return reason


def _details_or_none(client: JobSubmissionClient, submission_id: str) -> JobDetails | None:
    """The Ray job's details; None when the job server does not know it (an unreachable one raises)."""
    try:
        return client.get_job_info(submission_id)
    except RuntimeError as exc:
        if "status code 404" in str(exc):
            return None
        raise


@dataclass
class _RayJob:
    """A Ray job this runner follows: its submission id and the last status it read."""

    submission_id: str
    status: JobStatus = JobStatus.PENDING
    stop_sent: bool = False


class RayJobRunner(JobRunner):
    def __init__(self, registry: Registry, data_dir: Path, datasets_dir: Path | None = None, *, address: str,
                 max_jobs: int = 2, cpus_per_job: float = 1.0, training_gpus: int = 0, python: str = "python",
                 cancel_grace: float = 5.0) -> None:
        self.registry, self.address = registry, address
        # Absolute: the entrypoint runs in the Ray node's working directory, not the server's.
        self.data_dir = Path(data_dir).resolve()
        self.datasets_dir = Path(datasets_dir).resolve() if datasets_dir else None
        self.max_jobs, self.cpus_per_job, self.training_gpus = max_jobs, cpus_per_job, training_gpus
        self.python, self.cancel_grace = python, cancel_grace
        self._registry_key = str(Path(registry.path).resolve())
        self._client: JobSubmissionClient | None = None
        self._problem: str | None = "not contacted yet"
        self._active: dict[str, _RayJob] = {}  # latentmap job id -> its Ray job; only the monitor thread writes it
        self._reattached = False
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._monitor: threading.Thread | None = None

    # ----- JobRunner ------------------------------------------------------------------------
    def reconcile(self) -> list[Job]:
        """Re-attach to this registry's Ray jobs still running; jobs left running with neither a Ray
        job nor a live local process (e.g. a CLI run) become interrupted. When the cluster does not
        answer yet, this waits for the first contact (the monitor calls it again)."""
        client = self._connect()
        if client is None:
            return []
        try:
            ended = self._reattach(client)
        except CLUSTER_ERRORS as exc:
            self._lost(exc)
            return []
        self._answered()
        return ended

    def start(self) -> None:
        self._monitor = threading.Thread(target=self._watch, name="latentmap-ray-monitor", daemon=True)
        self._monitor.start()

    def submit(self, job_id: str) -> None:
        self._wake.set()  # the row is queued; the monitor submits it when the cluster has room

    def cancel(self, job_id: str) -> None:
        self.registry.request_cancel(job_id)

    def status(self) -> RunnerStatus:
        """Never waits (answered on the event loop): the monitor thread keeps what it last saw."""
        reachable = self._problem is None
        free = max(self.max_jobs - len(self._active), 0) if reachable else 0
        return RunnerStatus(backend="ray", workers=self.max_jobs, workers_alive=self.max_jobs if reachable else 0,
                            workers_ready=free, cluster_address=self.address, cluster_reachable=reachable,
                            cluster_error=self._problem)

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop watching; the Ray jobs keep running and record their own end (the next start re-attaches)."""
        self._stopping.set()
        self._wake.set()
        if self._monitor is not None:
            self._monitor.join(timeout)
        if self._active:
            log.info("%d Ray job(s) keep running: %s", len(self._active),
                     ", ".join(tracked.submission_id for tracked in self._active.values()))

    # ----- the monitor ----------------------------------------------------------------------
    def _watch(self) -> None:
        while not self._stopping.is_set():
            try:
                client = self._connect()
                if client is not None:
                    if not self._reattached:
                        self._reattach(client)
                    self._answered()  # only now: health says reachable once this registry's jobs are known
                    self._follow(client)
                    self._submit_queued(client)
            except CLUSTER_ERRORS as exc:
                self._lost(exc)
            except Exception:  # the monitor must outlive a hiccup (e.g. a locked registry)
                log.exception("Ray job monitor")
            self._wake.wait(MONITOR_SECONDS)
            self._wake.clear()

    def _connect(self) -> JobSubmissionClient | None:
        """The client, (re)made when needed; None while the cluster does not answer (the reason is kept)."""
        try:
            if self._client is None:
                self._client = JobSubmissionClient(self.address)
            else:
                self._client.get_version()
        except CLUSTER_ERRORS as exc:
            self._lost(exc)
            return None
        return self._client

    def _answered(self) -> None:
        if self._problem is not None:
            log.info("Ray cluster at %s answers", self.address)
        self._problem = None

    def _lost(self, exc: BaseException) -> None:
        problem = f"the Ray cluster at {self.address} does not answer: {_one_line(exc)}"
        if problem != self._problem:
            log.warning("%s; queued jobs wait", problem)
        self._problem, self._client = problem, None

    def _reattach(self, client: JobSubmissionClient) -> list[Job]:
        latest: dict[str, JobDetails] = {}
        for details in client.list_jobs():
            metadata = details.metadata or {}
            if metadata.get(REGISTRY_KEY) == self._registry_key and JOB_KEY in metadata:
                known = latest.get(metadata[JOB_KEY])
                if known is None or (details.start_time or 0) >= (known.start_time or 0):
                    latest[metadata[JOB_KEY]] = details
        ended = []
        for job in self.registry.list_jobs(statuses=("running",)):
            details = latest.get(job.id)
            if details is None or not details.submission_id:
                continue
            tracked = _RayJob(details.submission_id, details.status)
            if details.status.is_terminal():
                if self._record_end(job.id, tracked, details) is not None:
                    ended.append(job)
            else:
                self._active[job.id] = tracked
                log.info("re-attached to Ray job %s (job %s)", tracked.submission_id, job.id)
        for job in self.registry.stale_jobs(job_process_alive(self.registry)):
            if job.id not in self._active and self.registry.finish_job(job.id, "interrupted", INTERRUPTED) is not None:
                ended.append(job)
        self._reattached = True
        return ended

    def _follow(self, client: JobSubmissionClient) -> None:
        now_overdue = {job.id for job in self.registry.list_jobs(statuses=("running",)) if self._cancel_overdue(job)}
        for job_id, tracked in list(self._active.items()):
            details = _details_or_none(client, tracked.submission_id)
            if details is None:  # deleted, or the head restarted and lost its jobs
                del self._active[job_id]
                self.registry.finish_job(job_id, "interrupted", f"Ray job {tracked.submission_id} is gone from the cluster")
                continue
            tracked.status = details.status
            if details.status.is_terminal():
                self._record_end(job_id, tracked, details)
                del self._active[job_id]
            elif job_id in now_overdue and not tracked.stop_sent:
                log.warning("job %s ignored its cancel for %g s: stopping Ray job %s", job_id, self.cancel_grace,
                            tracked.submission_id)
                client.stop_job(tracked.submission_id)
                tracked.stop_sent = True

    def _cancel_overdue(self, job: Job) -> bool:
        return job.cancel_requested is not None and time.time() - job.cancel_requested >= self.cancel_grace

    def _record_end(self, job_id: str, tracked: _RayJob, details: JobDetails) -> Job | None:
        """A Ray job has ended: when its process did not record the job's end, record it here."""
        job = self.registry.get_job(job_id)
        if job is None or job.status != "running":
            return None  # the entrypoint recorded it (the usual case)
        said = f" ({ray_reason(details)})"
        if tracked.status == JobStatus.STOPPED and job.cancel_requested is not None:
            status, error = "cancelled", f"cancelled: Ray job {tracked.submission_id} stopped after {self.cancel_grace:g} s without a reply"
        elif tracked.status == JobStatus.STOPPED:
            status, error = "failed", f"Ray job {tracked.submission_id} was stopped outside latentmap{said}"
        elif tracked.status == JobStatus.FAILED:
            status, error = "failed", f"Ray job {tracked.submission_id} failed{said}"
        else:
            status, error = "failed", f"Ray job {tracked.submission_id} ended without recording the job's end{said}"
        log.warning("job %s: %s", job_id, error)
        return self.registry.finish_job(job_id, status, error)

    def _submit_queued(self, client: JobSubmissionClient) -> None:
        # Nothing waits inside Ray (a job left PENDING 15 min is failed by Ray): while one of ours
        # waits for resources, the rest wait in the registry.
        while (len(self._active) < self.max_jobs and not self._stopping.is_set()
               and all(tracked.status != JobStatus.PENDING for tracked in self._active.values())):
            job = self.registry.claim_next_job(os.getpid())
            if job is None:
                return
            try:
                submission_id = client.submit_job(**self._submission(job))
            except CLUSTER_ERRORS:
                self.registry.requeue_job(job.id, job.params)  # not lost: it goes back to the queue
                raise
            self._active[job.id] = _RayJob(submission_id)
            log.info("job %s (%s) submitted as Ray job %s", job.id, job.kind, submission_id)

    def _submission(self, job: Job) -> dict[str, Any]:
        """JobSubmissionClient.submit_job's arguments for one latentmap job."""
        command = [self.python, "-m", "app.jobs.ray_entry", "--data-dir", str(self.data_dir)]
        if self.datasets_dir is not None:
            command += ["--datasets-dir", str(self.datasets_dir)]
        command.append(job.id)
        gpus = self.training_gpus if job.kind == "train" and self.training_gpus >= 1 else 0
        return {"entrypoint": shlex.join(command), "submission_id": f"latentmap-{job.id}-{uuid.uuid4().hex[:6]}",
                "entrypoint_num_cpus": self.cpus_per_job, "entrypoint_num_gpus": gpus or None,
                "metadata": {JOB_KEY: job.id, REGISTRY_KEY: self._registry_key, "kind": job.kind, "run": job.run_id}}
