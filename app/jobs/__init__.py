"""Job runners: the interface (`JobRunner`) and the local process backend (`LocalJobRunner`).

Nothing here imports FastAPI: worker processes import this package.
"""
from app.jobs.base import JobRunner, RunnerStatus
from app.jobs.local import LocalJobRunner

__all__ = ["JobRunner", "LocalJobRunner", "RunnerStatus"]
