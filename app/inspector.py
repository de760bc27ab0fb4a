"""The augmentation inspector's worker: one spawned process that runs a run's transform and encoder.

The server process never imports torch, and the training workers may be busy for minutes, so the
inspector has a process of its own, started on the first request and ended after `IDLE_SECONDS`
without one (it holds torch and a few models, ~300 MB). It runs one request at a time on one
torch thread; at most `MAX_WAITING` requests wait for it, others are refused at once (`Busy`).
Answers are cached in the server by (run directory, model file version, index, pairs).
"""
from __future__ import annotations

import multiprocessing
import signal
import threading
from collections import OrderedDict
from concurrent.futures import CancelledError, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import numpy as np

IDLE_SECONDS = 300.0
ANSWER_SECONDS = 120.0  # the first answer includes the process start and torch import
MAX_WAITING = 4
CACHED_ANSWERS = 64


class Busy(RuntimeError):
    """The inspector has too many requests waiting, or did not answer in time."""


def _start_worker() -> None:
    from app.jobs.worker import die_with_parent

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the process group; the server ends us
    die_with_parent()
    import torch

    torch.set_num_threads(1)  # never compete with training for the cores


def _inspect(run_dir: str, image: np.ndarray, index: int, pairs: int) -> dict[str, Any]:
    """Runs in the worker: ml.augmentation_pairs, with the reasons a run cannot be inspected as ValueError."""
    from ml.augmentation_pairs import NotInspectable, augmentation_pairs

    try:
        return augmentation_pairs(Path(run_dir), image, index, pairs)
    except (NotInspectable, FileNotFoundError) as exc:  # e.g. the run was deleted meanwhile
        raise ValueError(str(exc)) from None


class AugmentationInspector:
    """`pairs(run_dir, image, index, pairs)` → ml.augmentation_pairs' answer, from the worker or the cache."""

    def __init__(self, idle_seconds: float = IDLE_SECONDS) -> None:
        self.idle_seconds = idle_seconds
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None
        self._timer: threading.Timer | None = None
        self._waiting = threading.BoundedSemaphore(MAX_WAITING)
        self._cache: OrderedDict[tuple, dict[str, Any]] = OrderedDict()

    def pairs(self, run_dir: Path, image: np.ndarray, index: int, pairs: int) -> dict[str, Any]:
        """Raises ValueError (the run cannot be inspected: the reason) or Busy."""
        model = Path(run_dir) / "model.pt"
        key = (str(run_dir), model.stat().st_mtime_ns if model.exists() else None, index, pairs)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        if not self._waiting.acquire(blocking=False):
            raise Busy(f"the augmentation inspector has {MAX_WAITING} requests waiting; try again in a moment")
        try:
            future = self._submit(str(run_dir), image, index, pairs)
            try:
                answer = future.result(timeout=ANSWER_SECONDS)
            except FutureTimeout:
                raise Busy(f"the augmentation inspector did not answer within {ANSWER_SECONDS:.0f} s") from None
            except (BrokenProcessPool, CancelledError):  # the process died, or was ended while this waited
                self._discard_pool()
                raise Busy("the augmentation inspector's process ended; try again") from None
        finally:
            self._waiting.release()
        with self._lock:
            self._cache[key] = answer
            while len(self._cache) > CACHED_ANSWERS:
                self._cache.popitem(last=False)
        return answer

    def _submit(self, *args: Any):
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                                 initializer=_start_worker)
            if self._timer is not None:
                self._timer.cancel()
            self._timer = threading.Timer(self.idle_seconds, self.close)
            self._timer.daemon = True
            self._timer.start()
            return self._pool.submit(_inspect, *args)

    def _discard_pool(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        """End the worker process (a later request starts a new one)."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        self._discard_pool()

    @property
    def running(self) -> bool:
        return self._pool is not None


INSPECTOR = AugmentationInspector()
