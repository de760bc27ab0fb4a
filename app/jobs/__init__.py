"""Job runners: the interface (`JobRunner`), the local process backend (`LocalJobRunner`) and, with
`LATENTMAP_BACKEND=ray`, the Ray backend (`app.jobs.ray.RayJobRunner`, imported only then: Ray is
an optional extra).

Nothing here imports FastAPI: worker processes import this package.
"""
from __future__ import annotations

from app.jobs.base import JobRunner, RunnerStatus
from app.jobs.local import LocalJobRunner
from app.registry import Registry
from app.settings import Settings

__all__ = ["JobRunner", "LocalJobRunner", "RunnerStatus", "build_runner", "ray_problem"]


def build_runner(registry: Registry, settings: Settings) -> JobRunner:
    """The runner `settings.backend` names, configured from the settings."""
    if settings.backend == "ray":
        from app.jobs.ray import RayJobRunner

        return RayJobRunner(registry, settings.data_dir, settings.datasets_dir, address=settings.ray_address,
                            max_jobs=settings.ray_max_jobs, cpus_per_job=settings.ray_cpus_per_job,
                            training_gpus=settings.ray_training_gpus, python=settings.ray_python,
                            cancel_grace=settings.cancel_grace_seconds)
    return LocalJobRunner(registry, settings.data_dir, settings.datasets_dir, workers=settings.workers,
                          warm_up=settings.warm_up, cancel_grace=settings.cancel_grace_seconds)


def ray_problem(settings: Settings) -> str | None:
    """Why the Ray backend cannot start (Ray not installed, the cluster does not answer), in one line; None when it can."""
    try:
        from app.jobs.ray import cluster_problem
    except ImportError as exc:
        return f"LATENTMAP_BACKEND=ray needs Ray: pip install 'latentmap[ray]' ({exc})"
    problem = cluster_problem(settings.ray_address)
    if problem is None:
        return None
    return (f"the Ray cluster at LATENTMAP_RAY_ADDRESS={settings.ray_address} does not answer ({problem});"
            f" start it with `ray start --head` or fix the address")
