"""Faults injected into a real server (uvicorn in a subprocess, its own data directory, SQLite):
SIGKILL of the server mid-training and a restart, SIGKILL of a worker, a dataset that breaks under
a queued job, a disk write failure (RLIMIT_FSIZE in the worker), and a worker killed while idle.
"""
from __future__ import annotations

import hashlib
import io
import os
import signal
import subprocess
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from live_server import (LiveServer, job_of, process_running, start_training, wait_for,
                         wait_job, wait_run_complete)
from PIL import Image

pytestmark = pytest.mark.slow


def file_digests(directory: Path) -> dict[str, str]:
    return {str(path.relative_to(directory)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(directory.rglob("*")) if path.is_file()}


def assert_artifacts_complete(run_dir: Path) -> None:
    """Every artifact under its final name loads completely; only dot-named temp files may be partial."""
    import torch

    for path in run_dir.rglob("*"):
        if not path.is_file() or path.name.startswith("."):
            continue
        if path.suffix == ".pt":
            torch.load(path, map_location="cpu", weights_only=True)
        elif path.suffix == ".npy":
            np.load(path, allow_pickle=False)
        elif path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                [archive[name] for name in archive.files]
        elif path.suffix == ".json":
            import json

            json.loads(path.read_text())


@pytest.fixture
def servers(tmp_path: Path):
    started: list[LiveServer] = []

    def make(**env: str) -> LiveServer:
        server = LiveServer(tmp_path / "data", **env)
        started.append(server)
        return server.start()

    yield make
    for server in started:
        server.stop()


def test_server_sigkill_mid_training_then_restart_and_resume(servers, tmp_path: Path) -> None:
    server = servers()
    finished_run, finished_job = start_training(server, epochs=2)
    wait_run_complete(server, finished_run)
    finished_dir = tmp_path / "data" / "runs" / finished_run
    before = file_digests(finished_dir)
    assert {"model.pt", "embeddings.npy", "metrics.json", "checkpoint.pt"} <= set(before)

    epochs = 60  # many more than the three the test waits for: a digits epoch can take ~50 ms on a fast machine
    run_id, job_id = start_training(server, epochs=epochs)
    run_dir = tmp_path / "data" / "runs" / run_id
    wait_for(lambda: (job_of(server, job_id).get("metrics") or {}).get("epoch", 0) >= 3 and (run_dir / "checkpoint.pt").exists(),
             120, "three epochs to finish")
    workers = server.workers()
    assert len(workers) == 1
    server.sigkill()

    # The worker does not outlive the server: no orphan keeps training or writing to the registry.
    wait_for(lambda: not any(process_running(pid) for pid in workers), 5, "the orphaned worker to exit")
    registry = tmp_path / "data" / "latentmap.sqlite3"
    snapshot = {path: path.stat().st_mtime_ns for path in [*run_dir.rglob("*"), registry] if path.exists()}
    time.sleep(1.0)
    assert {path: path.stat().st_mtime_ns for path in snapshot if path.exists()} == snapshot
    assert_artifacts_complete(run_dir)
    assert not (run_dir / "model.pt").exists()  # training had not finished: no final model pretends it had

    server = servers()  # same data directory
    job = job_of(server, job_id)
    assert job["status"] == "interrupted" and "restart" in job["error"]
    assert server.client.get(f"/api/runs/{run_id}").json()["status"] == "interrupted"
    assert file_digests(finished_dir) == before
    finished = server.client.get(f"/api/runs/{finished_run}").json()
    assert finished["status"] == "succeeded" and job_of(server, finished_job)["status"] == "succeeded"
    assert server.client.get(f"/api/runs/{finished_run}/points").status_code == 200

    response = server.client.post(f"/api/jobs/{job_id}/resume")
    assert response.status_code == 202, response.text
    resumed = wait_job(server, job_id, timeout=240)
    assert resumed["status"] == "succeeded", resumed
    run = wait_run_complete(server, run_id)
    assert run["status"] == "succeeded" and all(a["status"] == "succeeded" for a in run["projections"] + run["clusterings"])
    history = (run_dir / "history.json").read_text()
    import json

    epochs_done = [row["epoch"] for row in json.loads(history)]
    assert epochs_done == list(range(1, epochs + 1))
    assert_artifacts_complete(run_dir)
    assert server.client.get(f"/api/runs/{run_id}/points").status_code == 200


def _zip_of_pngs(classes: dict[str, int]) -> bytes:
    buffer = io.BytesIO()
    rng = np.random.default_rng(1)
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, count in classes.items():
            for i in range(count):
                image = io.BytesIO()
                Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8)).save(image, format="PNG")
                archive.writestr(f"{name}/{i}.png", image.getvalue())
    return buffer.getvalue()


def test_worker_deaths_fail_their_jobs_and_the_server_keeps_serving(servers, tmp_path: Path) -> None:
    server = servers()
    uploaded = server.client.post("/api/datasets", files={"file": ("f.zip", _zip_of_pngs({"a": 10, "b": 10}))},
                                  data={"name": "fragile"})
    assert uploaded.status_code == 201, uploaded.text
    long_run, long_job = start_training(server, epochs=5000)
    wait_job(server, long_job, 60, statuses=("running",))
    fragile_run, fragile_job = start_training(server, epochs=1, dataset="fragile")  # queued behind the long job
    # The dataset breaks on disk while its job waits: every image becomes garbage.
    for path in (tmp_path / "data" / "datasets" / "fragile").rglob("*.png"):
        path.write_bytes(b"not a png any more")

    [worker] = server.workers()
    os.kill(worker, signal.SIGKILL)
    killed = wait_job(server, long_job, 30)
    assert killed["status"] == "failed"
    assert "worker process" in killed["error"] and "SIGKILL" in killed["error"], killed["error"]

    broken = wait_job(server, fragile_job, 90)  # run by the replacement worker
    assert broken["status"] == "failed"
    assert "fragile" in broken["error"] and "PNG or JPEG" in broken["error"], broken["error"]
    assert "Traceback" not in broken["error"]

    health = server.client.get("/api/health").json()
    assert health["workers_alive"] == 1
    ok_run, ok_job = start_training(server, epochs=1)
    assert wait_job(server, ok_job, 90)["status"] == "succeeded"
    assert server.client.get("/api/runs").status_code == 200


def test_disk_write_failure_fails_the_job_cleanly(servers, tmp_path: Path) -> None:
    # Files written by the worker may not exceed 1 MB: the first checkpoint (about 1.3 MB) cannot be written.
    server = servers(LATENTMAP_TEST_WORKER_MAX_FILE_BYTES=str(1_000_000))
    run_id, job_id = start_training(server, epochs=3)
    job = wait_job(server, job_id, 90)
    assert job["status"] == "failed"
    assert job["error"], job
    run_dir = tmp_path / "data" / "runs" / run_id
    assert not (run_dir / "checkpoint.pt").exists() and not (run_dir / "model.pt").exists()
    assert [path.name for path in run_dir.iterdir() if path.name.endswith(".tmp")] == []  # the partial write was removed
    assert_artifacts_complete(run_dir)
    assert server.client.get(f"/api/runs/{run_id}").json()["status"] == "failed"
    assert server.client.get("/api/health").json()["workers_alive"] == 1
    response = server.client.post(f"/api/jobs/{job_id}/resume")
    assert response.status_code == 409 and "checkpoint" in response.json()["detail"]
    assert "File too large" in job["error"] or "No space" in job["error"], job["error"]


def test_idle_worker_killed_then_server_shuts_down(servers) -> None:
    server = servers()
    [worker] = server.workers()
    os.kill(worker, signal.SIGKILL)  # idle: waiting for a job
    wait_for(lambda: len(server.workers()) == 1 and worker not in server.workers()
             and server.client.get("/api/health").json()["workers_ready"] == 1, 60, "a replacement worker")
    assert server.client.get("/api/runs").status_code == 200
    assert server.process is not None
    server.process.send_signal(signal.SIGTERM)
    # shutdown does not hang on the dead worker (uvicorn re-raises SIGTERM once it has shut down cleanly)
    assert server.process.wait(20) in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in server.log_text()


def test_reconcile_tells_a_reused_pid_from_a_live_job(tmp_path: Path) -> None:
    """At start-up a running job whose pid now belongs to a process that started after the job is
    interrupted; one whose process is still the one that started it (e.g. a CLI `latentmap train`) stays."""
    from fastapi.testclient import TestClient

    from app.main import create_app
    from app.registry import Registry
    from app.settings import Settings

    registry = Registry(tmp_path / "data" / "latentmap.sqlite3").open()
    stale_job = registry.create_job("train", "r-stale", {"config": {}}, status="running", worker_pid=None)
    time.sleep(1.5)  # well past the 0.5 s tolerance of /proc start times
    newcomer = subprocess.Popen(["sleep", "60"])  # started after the job: a reused pid
    live = subprocess.Popen(["sleep", "60"])
    time.sleep(1.5)
    live_job = registry.create_job("train", "r-live", {"config": {}}, status="running", worker_pid=live.pid)
    with registry._transaction() as connection:  # the stale job recorded the pid the newcomer has now
        connection.execute("UPDATE jobs SET worker_pid = ? WHERE id = ?", (newcomer.pid, stale_job.id))
    try:
        with TestClient(create_app(Settings(data_dir=tmp_path / "data", warm_up=False))) as client:
            assert client.get(f"/api/jobs/{stale_job.id}").json()["status"] == "interrupted"
            assert client.get(f"/api/jobs/{live_job.id}").json()["status"] == "running"
    finally:
        for process in (newcomer, live):
            process.kill()
            process.wait()
