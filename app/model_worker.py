"""One spawned process that runs a trained model for the server: the augmentation inspector and the decoder.

The server process never imports torch, and the training workers may be busy for minutes, so
requests that need a run's model (a point's augmented views, a decoded map position) go to a
process of their own, started on the first request and ended after `IDLE_SECONDS` without one (it
holds torch and a few models, ~300 MB). It runs one request at a time on one torch thread; at most
`MAX_WAITING` different requests wait for it, others are refused at once (`Busy`). A request waits
at most `reply_seconds` for its answer: the first one also starts the process and imports torch
(10 s and more on a busy machine), so it is told `Pending` — try again — while the work goes on,
and the answer waits in the cache, keyed by what the caller says identifies it (run directory,
model file version, the request's arguments), for the request that asks again.
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
from typing import Any, Callable

IDLE_SECONDS = 300.0
REPLY_SECONDS = 5.0  # the longest a request waits; the work goes on after it is told to come back
ANSWER_SECONDS = 120.0  # the longest one answer may take (the first includes the process start and torch import)
MAX_WAITING = 4
CACHED_ANSWERS = 64


class Busy(RuntimeError):
    """The model process has too many requests waiting, or did not answer in time."""


class Pending(Busy):
    """The answer is being computed and was not ready in time: ask again in a moment."""


def _start_worker() -> None:
    from app.jobs.worker import die_with_parent

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the process group; the server ends us
    die_with_parent()
    import torch

    torch.set_num_threads(1)  # never compete with training for the cores


class ModelWorker:
    """`ask(key, function, *args)` → function(*args) run in the model process, or from the cache."""

    def __init__(self, idle_seconds: float = IDLE_SECONDS, reply_seconds: float = REPLY_SECONDS) -> None:
        self.idle_seconds, self.reply_seconds = idle_seconds, reply_seconds
        self._lock = threading.RLock()  # a future's done-callback may run at once, where the lock is held
        self._pool: ProcessPoolExecutor | None = None
        self._timer: threading.Timer | None = None
        self._pending: dict[tuple, tuple[Future, float]] = {}  # key → (its future, when it was submitted)
        self._cache: OrderedDict[tuple, Any] = OrderedDict()

    def ask(self, key: tuple, function: Callable[..., Any], *args: Any, what: str = "this request",
            reply_seconds: float | None = None) -> Any:
        """The answer of `function(*args)` (a picklable module-level function) for `key`.

        Raises what the function raised (e.g. ValueError), Pending (ask again: `what` is still being
        computed) or Busy (too many waiting, no answer within ANSWER_SECONDS, or the process died).
        `reply_seconds` overrides how long this call waits (0: submit and return at once).
        """
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
            if key in self._pending:
                future, submitted = self._pending[key]
            else:
                if len(self._pending) >= MAX_WAITING:
                    raise Busy(f"the model process has {MAX_WAITING} requests waiting already; try again in a moment")
                future, submitted = self._submit(function, *args), time.monotonic()
                self._pending[key] = (future, submitted)
                # Runs at once when the answer is already there (it then leaves _pending before this reads it).
                future.add_done_callback(lambda done, key=key: self._settle(key, done))
        try:
            return future.result(timeout=self.reply_seconds if reply_seconds is None else reply_seconds)
        except FutureTimeout:
            if time.monotonic() - submitted > ANSWER_SECONDS:
                self._discard_pool()
                raise Busy(f"the model process did not answer within {ANSWER_SECONDS:.0f} s") from None
            raise Pending(f"still drawing {what} (the first answer also starts the model process and loads the"
                          " model); try again in a moment") from None
        except (BrokenProcessPool, CancelledError):  # the process died, or was ended while this waited
            self._discard_pool()
            raise Busy("the model process ended; try again") from None

    def _settle(self, key: tuple, future: Future) -> None:
        """A finished answer leaves the pending list; a good one is cached for whoever asks next."""
        with self._lock:
            self._pending.pop(key, None)
            if future.cancelled() or future.exception() is not None:
                return
            self._cache[key] = future.result()
            while len(self._cache) > CACHED_ANSWERS:
                self._cache.popitem(last=False)

    def _submit(self, function: Callable[..., Any], *args: Any) -> Future:
        """Hand one request to the worker process (started if needed); the caller holds the lock."""
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_start_worker)
        if self._timer is not None:
            self._timer.cancel()
        self._timer = threading.Timer(self.idle_seconds, self.close)
        self._timer.daemon = True
        self._timer.start()
        return self._pool.submit(function, *args)

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


# One process for every model the server runs: the inspector's encoders and the decoders share it.
MODEL_WORKER = ModelWorker()
