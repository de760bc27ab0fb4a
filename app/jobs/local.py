"""The local backend: N long-lived worker processes pulling queued jobs from the registry.

With `warm_up`, one more process compiles UMAP's numba code into the disk cache at the lowest CPU
priority while the workers already take jobs (app.jobs.worker.warm_up_main): no worker compiles
anything before its first job, and no job shares its process or its share of the CPU with it.
Once it is done, idle workers load that code between jobs (app.jobs.worker.worker_main).

A monitor thread in the server process watches the workers: a worker that dies (crash, kill,
out-of-memory) has its job marked failed with the reason and is replaced; a job that ignores a
cancel request for `cancel_grace` seconds has its worker terminated and replaced.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from dataclasses import dataclass
from multiprocessing.context import SpawnProcess
from multiprocessing.synchronize import Event
from pathlib import Path

from app.jobs.base import JobRunner, RunnerStatus
from app.jobs.worker import warm_up_main, worker_main
from app.processes import job_process_alive
from app.records import Job
from app.registry import Registry

log = logging.getLogger("latentmap.jobs")
MONITOR_SECONDS = 0.25
WARM_UP_NICENESS = 19  # the lowest CPU priority: the warm-up only gets cycles no job wants


# A worker that dies this soon after starting, this many times in a row, is not started again
# (e.g. a broken installation): the server keeps serving and /api/health shows no workers alive.
QUICK_DEATH_SECONDS = 10.0
QUICK_DEATH_LIMIT = 3


@dataclass
class _Worker:
    process: SpawnProcess
    ready: Event
    started: float
    seen_ready: bool = False  # once the Event said so: later status reads need not touch its lock

    def is_ready(self) -> bool:
        self.seen_ready = self.seen_ready or self.ready.is_set()
        return self.seen_ready


def exit_reason(exitcode: int | None) -> str:
    """Words for how a worker process ended (negative exit codes are signals)."""
    if exitcode is None:
        return "still running"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        hint = " (the system may have run out of memory)" if -exitcode == signal.SIGKILL else ""
        return f"killed by {name}{hint}"
    return f"exited with code {exitcode}"


class LocalJobRunner(JobRunner):
    def __init__(self, registry: Registry, data_dir: Path, datasets_dir: Path | None = None, workers: int = 1,
                 warm_up: bool = True, cancel_grace: float = 5.0) -> None:
        self.registry = registry
        self.data_dir, self.datasets_dir = Path(data_dir), datasets_dir
        self.size, self.warm_up, self.cancel_grace = workers, warm_up, cancel_grace
        self._context = multiprocessing.get_context("spawn")
        self._stop = self._context.Event()
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()
        self._monitor: threading.Thread | None = None
        self._stopping = threading.Event()
        self._quick_deaths = 0
        self._warm_up: SpawnProcess | None = None
        self._cache_warm = self._context.Event()  # set by the warm-up process once it is done

    # ----- JobRunner ------------------------------------------------------------------------
    def reconcile(self) -> list[Job]:
        return self.registry.reconcile(job_process_alive(self.registry))

    def start(self) -> None:
        with self._lock:
            self._workers = [self._spawn() for _ in range(self.size)]
        if self.warm_up:
            self._warm_up = self._context.Process(target=warm_up_main, args=(self._cache_warm,),
                                                  name="latentmap-warm-up", daemon=True)
            self._warm_up.start()
            os.setpriority(os.PRIO_PROCESS, self._warm_up.pid, WARM_UP_NICENESS)  # from its first instruction
        self._monitor = threading.Thread(target=self._watch, name="latentmap-job-monitor", daemon=True)
        self._monitor.start()

    def submit(self, job_id: str) -> None:
        # The row is already queued in the registry; idle workers poll it every POLL_SECONDS.
        return None

    def cancel(self, job_id: str) -> None:
        self.registry.request_cancel(job_id)

    def status(self) -> RunnerStatus:
        """Never waits: /api/health calls it on the event loop. The list is only ever replaced or
        assigned an item under the lock, so a copy taken without it is a consistent snapshot."""
        workers = list(self._workers)
        return RunnerStatus(
            backend="local",
            workers=self.size,
            workers_alive=sum(worker.process.is_alive() for worker in workers),
            workers_ready=sum(worker.is_ready() and worker.process.is_alive() for worker in workers),
            warm_up=self.warm_up_state(),
        )

    def warm_up_state(self) -> str:
        """"off" (not asked for), "running", "done" or "failed" (it only costs the first UMAP the compile time)."""
        process = self._warm_up
        if process is None:
            return "off"
        if process.is_alive():
            return "running"
        return "done" if process.exitcode == 0 else "failed"

    def warm_up_pid(self) -> int | None:
        return self._warm_up.pid if self._warm_up is not None else None

    def shutdown(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        self._stop.set()
        if self._monitor is not None:
            self._monitor.join(timeout)
        with self._lock:
            workers, self._workers = self._workers, []
        deadline = time.monotonic() + min(timeout, 1.0)
        for worker in workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
        for worker in workers:
            if worker.process.is_alive():
                self._stop_process(worker.process)
            self._record_death(worker.process, "interrupted", "the server shut down while this job ran")
        if self._warm_up is not None and self._warm_up.is_alive():
            self._stop_process(self._warm_up)

    # ----- monitoring -----------------------------------------------------------------------
    def worker_pids(self) -> list[int]:
        with self._lock:
            return [worker.process.pid for worker in self._workers if worker.process.pid is not None]

    def _spawn(self) -> _Worker:
        ready = self._context.Event()
        process = self._context.Process(
            target=worker_main,
            args=(str(self.registry.path), str(self.data_dir), str(self.datasets_dir) if self.datasets_dir else None,
                  ready, self._stop, self._cache_warm),
            name="latentmap-worker",
            daemon=True,
        )
        process.start()
        return _Worker(process, ready, time.monotonic())

    def _watch(self) -> None:
        while not self._stopping.wait(MONITOR_SECONDS):
            try:
                self._replace_dead_workers()
                self._force_cancels()
            except Exception:  # the monitor must outlive a hiccup (e.g. a locked registry)
                log.exception("job monitor")

    def _replace_dead_workers(self) -> None:
        with self._lock:
            if self._stopping.is_set():
                return
            kept: list[_Worker] = []
            for worker in self._workers:
                if worker.process.is_alive():
                    kept.append(worker)
                    continue
                worker.process.join(0)
                how = exit_reason(worker.process.exitcode)
                self._record_death(worker.process, "failed", f"the worker process running this job died: {how}")
                quick = time.monotonic() - worker.started < QUICK_DEATH_SECONDS
                self._quick_deaths = self._quick_deaths + 1 if quick else 0
                if self._quick_deaths > QUICK_DEATH_LIMIT:
                    log.error("workers keep dying at start (%s); not starting more", how)
                    continue
                log.warning("worker %s %s; starting a new one", worker.process.pid, how)
                kept.append(self._spawn())
            self._workers = kept

    def _force_cancels(self) -> None:
        now = time.time()
        for job in self.registry.list_jobs(statuses=("running",)):
            if job.cancel_requested is None or now - job.cancel_requested < self.cancel_grace:
                continue
            with self._lock:
                slot = next((i for i, w in enumerate(self._workers) if w.process.pid == job.worker_pid), None)
                if slot is None:
                    continue  # not ours (e.g. a CLI process): cooperative cancel only
                worker = self._workers[slot]
                self._stop_process(worker.process)
                self.registry.finish_job(job.id, "cancelled",
                                         f"cancelled: stopped by force after {self.cancel_grace:g} s without a reply")
                self._workers[slot] = self._spawn()

    def _record_death(self, process: SpawnProcess, status: str, reason: str) -> None:
        for job in self.registry.list_jobs(statuses=("running",)):
            if job.worker_pid == process.pid:
                self.registry.finish_job(job.id, status, reason)

    @staticmethod
    def _stop_process(process: SpawnProcess) -> None:
        process.terminate()
        process.join(2.0)
        if process.is_alive() and process.pid is not None:
            os.kill(process.pid, signal.SIGKILL)
            process.join(2.0)
