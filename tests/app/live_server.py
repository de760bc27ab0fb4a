"""`latentmap serve` in a subprocess on its own data directory and port, and small helpers to drive it
over HTTP: the real server for tests that kill, restart or load it (test_faults, test_responsive)."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import httpx

REPO = Path(__file__).resolve().parents[2]
FINISHED = ("succeeded", "failed", "cancelled", "interrupted")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def child_pids(pid: int) -> list[int]:
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


def process_running(pid: int) -> bool:
    """Alive and not a zombie (a dead child nobody has reaped yet runs nothing)."""
    try:
        return Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


def is_worker(pid: int) -> bool:
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
        self.port = free_port()
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
        return [pid for pid in child_pids(self.pid) if is_worker(pid)]

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
