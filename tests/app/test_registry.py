"""The SQLite registry: WAL mode, job life cycle, ordering, dependencies, cancel and reconciliation."""
from __future__ import annotations

import multiprocessing
import os
import sqlite3
from pathlib import Path

import pytest

from app.registry import Registry


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    registry = Registry(tmp_path / "latentmap.sqlite3").open()
    registry.create_run("r1", "digits", "ae", {"epochs": 1}, tmp_path / "runs" / "r1")
    return registry


def test_file_is_in_wal_mode(registry: Registry) -> None:
    with sqlite3.connect(registry.path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_jobs_are_claimed_oldest_first_and_only_once(registry: Registry) -> None:
    first = registry.create_job("train", "r1", {"n": 1})
    second = registry.create_job("project", "r1", {"n": 2})
    assert registry.claim_next_job(111).id == first.id
    assert registry.get_run("r1").status == "running"  # the run follows its training job
    claimed = registry.claim_next_job(222)
    assert claimed.id == second.id and claimed.status == "running" and claimed.worker_pid == 222
    assert registry.claim_next_job(333) is None


def test_a_dependent_job_waits_for_its_dependency_and_fails_with_it(registry: Registry) -> None:
    parent = registry.create_job("project", "r1", {})
    child = registry.create_job("cluster", "r1", {}, depends_on=parent.id)
    assert registry.claim_next_job(1).id == parent.id
    assert registry.claim_next_job(1) is None  # the child waits
    registry.finish_job(parent.id, "failed", "boom")
    child_now = registry.get_job(child.id)
    assert child_now.status == "failed"
    assert child_now.error == f"job {parent.id} it depends on ended failed"


def test_progress_and_success(registry: Registry) -> None:
    job = registry.create_job("train", "r1", {})
    registry.claim_next_job(1)
    registry.set_progress(job.id, 0.5, {"fraction": 0.5, "loss": 0.25})
    assert registry.get_job(job.id).progress == 0.5
    assert registry.get_job(job.id).metrics == {"fraction": 0.5, "loss": 0.25}
    registry.finish_job(job.id, "succeeded")
    finished = registry.get_job(job.id)
    assert (finished.status, finished.progress) == ("succeeded", 1.0)
    assert registry.get_run("r1").status == "succeeded"  # the run mirrors its training job


def test_cancel_of_queued_running_and_finished_jobs(registry: Registry) -> None:
    queued = registry.create_job("train", "r1", {})
    assert registry.request_cancel(queued.id).status == "cancelled"
    with pytest.raises(ValueError, match="already finished"):
        registry.request_cancel(queued.id)
    running = registry.create_job("train", "r1", {})
    registry.claim_next_job(1)
    assert registry.request_cancel(running.id).status == "running"
    assert registry.cancel_requested(running.id) is True
    with pytest.raises(ValueError, match="already being cancelled"):
        registry.request_cancel(running.id)
    with pytest.raises(LookupError):
        registry.request_cancel("nope")


def test_finish_only_once(registry: Registry) -> None:
    job = registry.create_job("train", "r1", {})
    registry.claim_next_job(1)
    assert registry.finish_job(job.id, "cancelled", "by force") is not None
    assert registry.finish_job(job.id, "succeeded") is None  # a late worker cannot overwrite the outcome
    assert registry.get_job(job.id).status == "cancelled"


def test_reconcile_interrupts_jobs_of_dead_processes_only(registry: Registry) -> None:
    dead = registry.create_job("train", "r1", {}, status="running", worker_pid=_dead_pid())
    alive = registry.create_job("train", "r1", {}, status="running", worker_pid=os.getppid())
    interrupted = registry.reconcile(lambda pid: pid == os.getppid())
    assert [job.id for job in interrupted] == [dead.id]
    assert registry.get_job(dead.id).status == "interrupted"
    assert registry.get_job(alive.id).status == "running"


def _dead_pid() -> int:
    process = multiprocessing.get_context("spawn").Process(target=os.getpid)
    process.start()
    process.join()
    return process.pid


def _claim_many(path: str, results: "multiprocessing.Queue[list[str]]") -> None:
    registry = Registry(Path(path))
    claimed = []
    while (job := registry.claim_next_job(os.getpid())) is not None:
        claimed.append(job.id)
    results.put(claimed)


def test_several_processes_never_claim_the_same_job(registry: Registry) -> None:
    created = {registry.create_job("cluster", "r1", {"i": i}).id for i in range(40)}
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    workers = [context.Process(target=_claim_many, args=(str(registry.path), results)) for _ in range(3)]
    for worker in workers:
        worker.start()
    claimed = [job for _ in workers for job in results.get(timeout=60)]
    for worker in workers:
        worker.join(10)
    assert sorted(claimed) == sorted(created)  # every job exactly once
