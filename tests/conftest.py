"""Shared fixtures: settings on a temporary data directory, a TestClient with real worker processes,
and a helper that trains a tiny digits run in-process (the CLI's path) for tests that need one."""
from __future__ import annotations

import importlib.util
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.settings import Settings


if importlib.util.find_spec("xdist") is not None:  # pytest-xdist (the dev extra) runs the suite on both cores
    def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
        """`--dist loadfile` (pyproject's addopts), with every browser test in one work unit: a module's tests
        share one worker (its module-scoped server or Ray head starts once, its tests keep their order) and
        the e2e modules share the session's server, browser and trained run instead of one per worker.
        (xdist's own `loadgroup` marks do not group under pytest 9.2: it rewrites a node id pytest no longer reads.)"""
        if config.getvalue("dist") != "loadfile":
            return None
        from xdist.scheduler import LoadFileScheduling

        class FileAndBrowserScheduling(LoadFileScheduling):
            def _split_scope(self, nodeid: str) -> str:
                path = nodeid.split("::", 1)[0]
                return "tests/e2e" if path.startswith("tests/e2e/") else path

        return FileAndBrowserScheduling(config, log)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Schemathesis's per-operation items (test_fuzz) all get the test function's node id under pytest 9.2,
    which builds an item's id from its original name; pytest-xdist schedules by node id and would run one
    of them only. Each gets its operation in its id, as its name already has it."""
    for item in items:
        node_id, original = getattr(item, "_id", None), getattr(item, "originalname", None)
        if (node_id is not None and getattr(node_id, "params", "") is None and original
                and item.name.startswith(f"{original}[") and item.name.endswith("]")):
            item._id = node_id.with_params(item.name[len(original) + 1:-1])


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Settings for tests: one worker, no numba warm-up, PCA as the default map (fast and exact)."""
    values: dict[str, Any] = {"data_dir": data_dir, "workers": 1, "warm_up": False, "default_projection": "pca",
                              "cancel_grace_seconds": 3.0}
    values.update(overrides)
    return Settings(**values)


@dataclass
class TinyRun:
    """A finished run in `data_dir`: its id, one projection and one clustering (or None)."""

    data_dir: Path
    run_id: str
    job_id: str
    projection_id: str | None
    clustering_id: str | None

    @property
    def run_dir(self) -> Path:
        return self.data_dir / "runs" / self.run_id


def train_tiny_run(data_dir: Path, method: str = "ae", epochs: int = 1, dataset: str = "digits", seed: int = 0,
                   analyses: bool = True, embedding_dim: int = 8) -> TinyRun:
    """Train `method` on `dataset` in this process, registered like `latentmap train`, then a PCA
    projection and a k-means (k = 10) clustering on the embedding when `analyses`."""
    from app import catalog, tasks
    from app.dataset_source import open_dataset
    from app.registry import Registry

    settings = make_settings(data_dir)
    registry = Registry(settings.registry_path).open()
    loaded = open_dataset(dataset, registry, None)
    config = catalog.train_config(dataset, method, loaded.image_shape, len(loaded),
                                  {"epochs": epochs, "seed": seed, "embedding_dim": embedding_dim}, {})

    def run_here(job: Any, **extra: Any) -> Any:
        context = tasks.JobContext(registry=registry, job=job, data_dir=data_dir, **extra)
        final = tasks.run_job(context)
        assert final.status == "succeeded", final.error
        return context

    run_id, job = tasks.queue_training(registry, config, data_dir, status="running", worker_pid=os.getpid())
    run_here(job, dataset=loaded)
    projection_id = clustering_id = None
    if analyses:
        projection_id, projection_job = tasks.queue_projection(registry, run_id, "pca", {"n_components": 2}, seed,
                                                               status="running", worker_pid=os.getpid())
        run_here(projection_job)
        params = catalog.validate_clustering("kmeans", {"n_clusters": 10})
        clustering_id, clustering_job = tasks.queue_clustering(registry, run_id, "kmeans", params, "embedding", seed,
                                                               status="running", worker_pid=os.getpid())
        run_here(clustering_job)
    return TinyRun(data_dir, run_id, job.id, projection_id, clustering_id)


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll `predicate` until it returns something truthy; fail naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def wait_for_job(client: TestClient, job_id: str, timeout: float = 120.0,
                 statuses: tuple[str, ...] = ("succeeded", "failed", "cancelled", "interrupted")) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        job = client.get(f"/api/jobs/{job_id}").json()
        return job if job["status"] in statuses else None

    return wait_until(done, timeout, f"job {job_id} to reach {statuses}")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "data")


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """A TestClient on a fresh data directory; its lifespan starts one real worker process."""
    from app.main import create_app

    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> TinyRun:
    """One finished digits AE run (1 epoch) with a PCA projection and a k-means clustering, shared read-only."""
    return train_tiny_run(tmp_path_factory.mktemp("tiny-run") / "data")


@pytest.fixture(scope="session")
def settings_factory() -> Callable[..., Settings]:
    """`settings_factory(data_dir, **overrides)` → test Settings (see make_settings)."""
    return make_settings


@pytest.fixture(scope="session")
def run_trainer() -> Callable[..., TinyRun]:
    """`run_trainer(data_dir, method="ae", epochs=1, ...)` → TinyRun (see train_tiny_run)."""
    return train_tiny_run


@pytest.fixture(scope="session")
def waiter() -> Callable[..., Any]:
    """`waiter(predicate, timeout, what)` → predicate's first truthy value (see wait_until)."""
    return wait_until


@pytest.fixture(scope="session")
def job_waiter() -> Callable[..., dict[str, Any]]:
    """`job_waiter(client, job_id, timeout=120, statuses=(...))` → the job once it has one of `statuses`."""
    return wait_for_job
