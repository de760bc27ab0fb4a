"""The augmentation inspector's worker: one spawned process that runs a run's transform and encoder.

The server process never imports torch, and the training workers may be busy for minutes, so the
inspector has a process of its own, started on the first request and ended after `IDLE_SECONDS`
without one (it holds torch and a few models, ~300 MB). It runs one request at a time on one
torch thread; at most `MAX_WAITING` different points wait for it, others are refused at once
(`Busy`). A request waits at most `REPLY_SECONDS` for its answer: the first one also starts the
process and imports torch (10 s and more on a busy machine), so it is told `Pending` — try again —
while the work goes on, and the answer waits in the cache, keyed by (run directory, model file
version, index, pairs), for the request that asks again.
"""
from __future__ import annotations

import multiprocessing
import signal
import threading
import time
from collections import OrderedDict
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import numpy as np

IDLE_SECONDS = 300.0
REPLY_SECONDS = 5.0  # the longest a request waits; the work goes on after it is told to come back
ANSWER_SECONDS = 120.0  # the longest one answer may take (the first includes the process start and torch import)
MAX_WAITING = 4
CACHED_ANSWERS = 64


class Busy(RuntimeError):
    """The inspector has too many requests waiting, or did not answer in time."""


class Pending(Busy):
    """The answer is being drawn and was not ready within REPLY_SECONDS: ask again in a moment."""


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

    def __init__(self, idle_seconds: float = IDLE_SECONDS, reply_seconds: float = REPLY_SECONDS) -> None:
        self.idle_seconds, self.reply_seconds = idle_seconds, reply_seconds
        self._lock = threading.RLock()  # a future's done-callback may run at once, where the lock is held
        self._pool: ProcessPoolExecutor | None = None
        self._timer: threading.Timer | None = None
        self._pending: dict[tuple, tuple[Future, float]] = {}  # key → (its future, when it was submitted)
        self._cache: OrderedDict[tuple, dict[str, Any]] = OrderedDict()

    def pairs(self, run_dir: Path, image: np.ndarray, index: int, pairs: int) -> dict[str, Any]:
        """Raises ValueError (the run cannot be inspected: the reason), Pending (ask again) or Busy."""
        model = Path(run_dir) / "model.pt"
        key = (str(run_dir), model.stat().st_mtime_ns if model.exists() else None, index, pairs)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
            if key not in self._pending:
                if len(self._pending) >= MAX_WAITING:
                    raise Busy(f"the augmentation inspector is drawing {MAX_WAITING} points already; try again in a moment")
                future = self._submit(str(run_dir), image, index, pairs)
                self._pending[key] = (future, time.monotonic())
                future.add_done_callback(lambda done, key=key: self._settle(key, done))
            future, submitted = self._pending[key]
        try:
            return future.result(timeout=self.reply_seconds)
        except FutureTimeout:
            if time.monotonic() - submitted > ANSWER_SECONDS:
                self._discard_pool()
                raise Busy(f"the augmentation inspector did not answer within {ANSWER_SECONDS:.0f} s") from None
            raise Pending("the augmentation inspector is still drawing this point's views (its first answer also"
                          " starts its process and loads the encoder); try again in a moment") from None
        except (BrokenProcessPool, CancelledError):  # the process died, or was ended while this waited
            self._discard_pool()
            raise Busy("the augmentation inspector's process ended; try again") from None

    def _settle(self, key: tuple, future: Future) -> None:
        """A finished answer leaves the pending list; a good one is cached for whoever asks next."""
        with self._lock:
            self._pending.pop(key, None)
            if future.cancelled() or future.exception() is not None:
                return
            self._cache[key] = future.result()
            while len(self._cache) > CACHED_ANSWERS:
                self._cache.popitem(last=False)

    def _submit(self, *args: Any) -> Future:
        """Hand one request to the worker process (started if needed); the caller holds the lock."""
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
