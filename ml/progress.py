"""The progress callback shape shared by training, projection and clustering.

`progress(iteration, step, metrics) -> bool`: called as work advances; returning True asks the work
to stop, which it does by raising `Stopped` at a point where finished artifacts are intact. This is
how the CLI draws a progress bar and how a job reports progress and obeys cancel.
"""
from __future__ import annotations

from typing import Callable

ProgressCallback = Callable[[int, int, dict[str, float]], bool]


class Stopped(Exception):
    """Work stopped early because its progress callback asked it to."""


def report(progress: ProgressCallback | None, iteration: int, step: int, metrics: dict[str, float]) -> None:
    """Call `progress` if given and raise `Stopped` when it asks to stop."""
    if progress is not None and progress(iteration, step, metrics):
        raise Stopped(f"stopped at iteration {iteration}, step {step}")
