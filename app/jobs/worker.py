"""The loop of one worker process: take queued jobs from the registry in order; and the warm-up process.

Both run in processes started with the `spawn` context; they import app.tasks and ml, never FastAPI.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from multiprocessing.synchronize import Event
from pathlib import Path

POLL_SECONDS = 0.1
# Fault injection for tests: the largest file (bytes) a worker may write (RLIMIT_FSIZE). Writing past
# it fails with EFBIG ("File too large"), exactly as a full disk fails a write with ENOSPC.
FILE_LIMIT_VARIABLE = "LATENTMAP_TEST_WORKER_MAX_FILE_BYTES"


def die_with_parent(poll_seconds: float = 0.1) -> int | None:
    """Make this worker end when the server process ends, even when the server is SIGKILLed.

    A daemon thread watches the parent pid and ends the process (os._exit) within `poll_seconds` of
    the server's death, mid-job or idle, so no orphan keeps training and writing to the registry;
    its job is then `running` with a dead pid and the next server start marks it interrupted.
    (Not prctl(PR_SET_PDEATHSIG): that fires when the parent *thread* that started the worker
    exits, e.g. the runner's monitor thread, not only when the server process dies.)
    Returns the parent's pid (None when not started by multiprocessing).
    """
    parent = multiprocessing.parent_process()
    if parent is None or parent.pid is None:
        return None
    parent_pid = parent.pid

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(poll_seconds)
        os._exit(1)

    threading.Thread(target=watch, name="latentmap-parent-watch", daemon=True).start()
    return parent_pid


def warm_up_main(done: Event) -> None:
    """Entry point of the warm-up process: compile UMAP's and HDBSCAN's numba code into numba's disk cache.

    A process of its own, which the runner puts at the lowest CPU priority (nice 19) at once, so that it never slows a job: a
    worker's training gets the cores while both want them, and the warm-up only uses idle time.
    Once the cache is populated (`make install` does it, see ml.numba_cache) this takes seconds,
    and every worker's first UMAP loads the compiled code instead of compiling it.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent()
    logging.basicConfig(level=logging.INFO, format=f"warm-up {os.getpid()}: %(levelname)s %(message)s")
    from ml.numba_cache import warm_up

    logging.getLogger(__name__).info("numba code for UMAP and HDBSCAN ready in %.1f s", warm_up())
    done.set()


def _load_umap() -> None:
    from ml.numba_cache import warm_up

    try:
        logging.getLogger(__name__).info("UMAP's code loaded from numba's cache in %.1f s", warm_up(hdbscan=False))
    except Exception:  # only costs the first UMAP job the loading time
        logging.getLogger(__name__).exception("could not load UMAP's code")


def _apply_file_limit() -> None:
    limit = os.environ.get(FILE_LIMIT_VARIABLE)
    if not limit:
        return
    import resource

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (int(limit), int(limit)))


def worker_main(registry_path: str, data_dir: str, datasets_dir: str | None, ready: Event, stop: Event,
                cache_warm: Event) -> None:
    """Entry point of a worker process (arguments are plain values so they pickle under spawn).

    Once the warm-up process has filled numba's disk cache (`cache_warm`), an idle worker loads
    UMAP's compiled code into itself (a tiny fit, ≈2 s), between jobs and never during one, so the
    first UMAP job after training does not pay for it.
    """
    # Ctrl-C in the server's terminal reaches the whole process group; the server decides when we stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent_pid = die_with_parent()
    _apply_file_limit()
    logging.basicConfig(level=logging.INFO, format=f"worker {os.getpid()}: %(levelname)s %(message)s")
    from app.registry import Registry
    from app.tasks import JobContext, run_job

    import ml.training  # noqa: F401 - torch and the models, loaded before the first training job

    ready.set()
    registry = Registry(Path(registry_path))
    pid = os.getpid()
    umap_loaded = False
    while not stop.is_set():
        if parent_pid is not None and os.getppid() != parent_pid:
            return  # orphaned (the server is gone): take no more jobs
        job = registry.claim_next_job(pid)
        if job is None and not umap_loaded and cache_warm.is_set():
            _load_umap()
            umap_loaded = True
            continue
        if job is None:
            # time.sleep, not stop.wait(): a process killed inside a multiprocessing Event.wait() stays
            # counted as a sleeper, and the server's stop.set() then blocks forever at shutdown.
            time.sleep(POLL_SECONDS)
            continue
        run_job(JobContext(registry=registry, job=job, data_dir=Path(data_dir),
                           datasets_dir=Path(datasets_dir) if datasets_dir else None))
