"""Faults injected into a real server (uvicorn in a subprocess, its own data directory, SQLite):
SIGKILL of the server mid-training and a restart, SIGKILL of a worker, a dataset that breaks under
a queued job, a disk write failure (RLIMIT_FSIZE in the worker), and a worker killed while idle.
"""
from __future__ import annotations

import hashlib
import io
import os
import signal
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any, Callable

import httpx
import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
FINISHED = ("succeeded", "failed", "cancelled", "interrupted")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_bytes().rsplit(b")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == pid:
                found.append(int(entry))
    return found


def _running(pid: int) -> bool:
    """Alive and not a zombie (a dead child nobody has reaped yet runs nothing)."""
    try:
        return Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


def _is_worker(pid: int) -> bool:
    try:
        return b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


class LiveServer:
    """`latentmap serve` on 127.0.0.1 in its own process group (so teardown can reach every child)."""

    def __init__(self, data_dir: Path, **env: str) -> None:
        self.data_dir, self.env = data_dir, env
        self.process: subprocess.Popen | None = None
        self.port = 0

    def start(self, timeout: float = 120.0) -> "LiveServer":
        self.port = _free_port()
        env = {**os.environ, "LATENTMAP_WARM_UP": "false", "LATENTMAP_DEFAULT_PROJECTION": "pca",
               "LATENTMAP_CANCEL_GRACE_SECONDS": "2", "PYTHONUNBUFFERED": "1", **self.env}
        env.pop("LATENTMAP_TOKEN", None)
        self.log = open(self.data_dir.parent / f"server-{self.port}.log", "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--data-dir", str(self.data_dir), "--host", "127.0.0.1",
             "--port", str(self.port), "--workers", "1"],
            cwd=REPO, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=60.0)
        wait_for(lambda: self._ready(), timeout, "the server to start with a ready worker")
        return self

    def _ready(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"server exited with {self.process.returncode}:\n{self.log_text()}")
        try:
            return self.client.get("/api/health").json()["workers_ready"] >= 1
        except (httpx.HTTPError, ValueError, KeyError):
            return False

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def workers(self) -> list[int]:
        return [pid for pid in _children(self.pid) if _is_worker(pid)]

    def log_text(self) -> str:
        return (self.data_dir.parent / f"server-{self.port}.log").read_text(errors="replace")[-4000:]

    def sigkill(self) -> None:
        os.kill(self.pid, signal.SIGKILL)
        assert self.process is not None
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # our own process group: leftovers of this server only
        except ProcessLookupError:
            pass
        self.process.wait(10)
        self.client.close()
        self.log.close()


def wait_for(condition: Callable[[], Any], timeout: float, what: str, every: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def job_of(server: LiveServer, job_id: str) -> dict[str, Any]:
    response = server.client.get(f"/api/jobs/{job_id}")
    assert response.status_code == 200, response.text
    return response.json()


def wait_job(server: LiveServer, job_id: str, timeout: float = 120.0, statuses: tuple[str, ...] = FINISHED) -> dict:
    return wait_for(lambda: (job := job_of(server, job_id))["status"] in statuses and job, timeout,
                    f"job {job_id} to reach {statuses}")


def wait_run_complete(server: LiveServer, run_id: str, timeout: float = 180.0) -> dict:
    """The run and its follow-up projection and clustering have all finished."""
    def complete() -> dict | None:
        run = server.client.get(f"/api/runs/{run_id}").json()
        analyses = run["projections"] + run["clusterings"]
        done = run["status"] in FINISHED and len(analyses) >= 2 and all(a["status"] in FINISHED for a in analyses)
        return run if done else None

    return wait_for(complete, timeout, f"run {run_id} and its analyses to finish")


def start_training(server: LiveServer, epochs: int, dataset: str = "digits") -> tuple[str, str]:
    response = server.client.post("/api/runs", json={"dataset": dataset, "method": "ae", "epochs": epochs, "seed": 3})
    assert response.status_code == 202, response.text
    body = response.json()
    return body["run_id"], body["job_id"]


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
    wait_for(lambda: not any(_running(pid) for pid in workers), 5, "the orphaned worker to exit")
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
