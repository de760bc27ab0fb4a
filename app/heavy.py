"""Heavy requests take turns: a sync endpoint marked `@heavy` runs in a worker thread under a small
limiter of its own instead of FastAPI's shared thread pool.

Rendering an atlas sheet, building a points payload, loading a dataset or decoding an upload costs
from tens of milliseconds to seconds of CPU. Run side by side without a bound, dozens of them (a
page opening, a fuzzer, a script) fill the shared pool and share two cores and the GIL with the
event loop, so light requests (job status, the runs list, /api/health) wait behind them. With the
limiter, at most HEAVY_CONCURRENCY of them run at once — as many as the cores can serve — the rest
wait their turn as cheap coroutines, and everything else keeps the thread pool to itself.
"""
from __future__ import annotations

import functools
import os
from typing import Any, Callable, TypeVar

import anyio
from anyio.lowlevel import RunVar

HEAVY_CONCURRENCY = max(2, min(4, os.cpu_count() or 2))
_LIMITER: RunVar[anyio.CapacityLimiter] = RunVar("latentmap_heavy_limiter")  # one per event loop

Result = TypeVar("Result")


def heavy_limiter() -> anyio.CapacityLimiter:
    try:
        return _LIMITER.get()
    except LookupError:
        limiter = anyio.CapacityLimiter(HEAVY_CONCURRENCY)
        _LIMITER.set(limiter)
        return limiter


def heavy(endpoint: Callable[..., Result]) -> Callable[..., Any]:
    """Mark a sync endpoint as heavy. FastAPI reads the parameters through `functools.wraps`
    (`__wrapped__`), so path, query and dependency parameters work exactly as before."""
    @functools.wraps(endpoint)
    async def run_in_turn(*args: Any, **kwargs: Any) -> Result:
        return await anyio.to_thread.run_sync(functools.partial(endpoint, *args, **kwargs), limiter=heavy_limiter())

    return run_in_turn
