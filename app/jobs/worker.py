"""The loop of one worker process: warm up once, then take queued jobs from the registry in order.

Runs in a process started with the `spawn` context; it imports app.tasks and ml, never FastAPI.
"""
from __future__ import annotations

import logging
import os
import signal
from multiprocessing.synchronize import Event
from pathlib import Path

POLL_SECONDS = 0.1


def worker_main(registry_path: str, data_dir: str, datasets_dir: str | None, warm_up: bool,
                ready: Event, stop: Event) -> None:
    """Entry point of a worker process (arguments are plain values so they pickle under spawn)."""
    # Ctrl-C in the server's terminal reaches the whole process group; the server decides when we stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=logging.INFO, format=f"worker {os.getpid()}: %(levelname)s %(message)s")
    from app.registry import Registry
    from app.tasks import JobContext, run_job

    if warm_up:
        # Compile numba code (UMAP, pynndescent) once per process rather than inside the first job.
        from ml.analysis import warm_up as warm_up_analysis

        warm_up_analysis(Path(data_dir) / "numba-cache")
    ready.set()
    registry = Registry(Path(registry_path))
    pid = os.getpid()
    while not stop.is_set():
        job = registry.claim_next_job(pid)
        if job is None:
            stop.wait(POLL_SECONDS)
            continue
        run_job(JobContext(registry=registry, job=job, data_dir=Path(data_dir),
                           datasets_dir=Path(datasets_dir) if datasets_dir else None))
