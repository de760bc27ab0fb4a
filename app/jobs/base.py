"""The job runner interface: the web layer records a job row, then hands its id to a runner.

Kept small on purpose so that each backend (local.py: worker processes; ray.py: a Ray cluster) runs
the same `app.tasks` functions without touching the routes.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from app.records import Job


@dataclass(frozen=True)
class RunnerStatus:
    backend: str
    workers: int
    workers_alive: int
    workers_ready: int
    # The numba warm-up process: "off", "running", "done" or "failed" (see app.jobs.worker.warm_up_main).
    warm_up: str = "off"
    # Backends that run jobs on a cluster (ray): where it is and whether it answers.
    cluster_address: str | None = None
    cluster_reachable: bool | None = None
    cluster_error: str | None = None


class JobRunner(ABC):
    @abstractmethod
    def reconcile(self) -> list[Job]:
        """At start-up, before `start`: jobs left running by a process that is gone become interrupted
        (resumable); returns them."""

    @abstractmethod
    def start(self) -> None:
        """Start executing queued jobs (called once, in the app's lifespan)."""

    @abstractmethod
    def submit(self, job_id: str) -> None:
        """Run a job whose registry row (status queued) has already been written."""

    @abstractmethod
    def cancel(self, job_id: str) -> None:
        """Stop a job: cooperatively first (cancel_requested), by force if it does not stop in time."""

    @abstractmethod
    def status(self) -> RunnerStatus: ...

    @abstractmethod
    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop the workers; jobs still running are recorded as interrupted (resumable)."""
