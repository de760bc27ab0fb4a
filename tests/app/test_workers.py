"""Real worker processes: a run end to end, live events, cancel (cooperative and by force), a job
whose dataset vanished, a worker killed mid-job — and the server keeps serving throughout."""
from __future__ import annotations

import base64
import io
import json
import os
import shutil
import signal
import time
import zipfile

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.main import create_app

LONG = {"dataset": "digits", "method": "ae", "epochs": 400, "embedding_dim": 8}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, settings_factory):
    settings = settings_factory(tmp_path_factory.mktemp("workers") / "data", cancel_grace_seconds=2.0)
    with TestClient(create_app(settings)) as client:
        yield client


def job(client: TestClient, job_id: str) -> dict:
    return client.get(f"/api/jobs/{job_id}").json()


def running_epoch(client: TestClient, job_id: str, epoch: int, timeout: float = 90.0) -> dict:
    """Wait until the job is running and reports epoch > `epoch` (so `epoch` epochs are checkpointed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = job(client, job_id)
        assert current["status"] in ("queued", "running"), current
        if current["status"] == "running" and (current["metrics"] or {}).get("epoch", 0) > epoch:
            return current
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not get past epoch {epoch} in {timeout} s: {job(client, job_id)}")


def worker_pid_of(client: TestClient, job_id: str) -> int:
    from app.registry import Registry

    registry: Registry = client.app.state.registry
    pid = registry.get_job(job_id).worker_pid
    assert pid is not None
    return pid


def tiny_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for label in ("a", "b"):
            for i in range(8):
                image = io.BytesIO()
                Image.fromarray(np.full((8, 8), 20 * i + (100 if label == "b" else 0), np.uint8)).save(image, "PNG")
                archive.writestr(f"{label}/{i}.png", image.getvalue())
    return buffer.getvalue()


def test_cancel_a_running_job_and_fail_a_job_whose_dataset_vanished(live: TestClient, job_waiter, settings_factory) -> None:
    uploaded = live.post("/api/datasets", data={"name": "vanishing"}, files={"file": ("v.zip", tiny_zip(), "application/zip")})
    assert uploaded.status_code == 201
    long = live.post("/api/runs", json=LONG).json()
    running_epoch(live, long["job_id"], 1)
    # queued behind the long job: its dataset folder is deleted before a worker gets to it
    doomed = live.post("/api/runs", json={"dataset": "vanishing", "method": "ae", "epochs": 1})
    assert doomed.status_code == 202
    assert job(live, doomed.json()["job_id"])["status"] == "queued"
    shutil.rmtree(live.app.state.registry.get_dataset("vanishing").path)

    started = time.monotonic()
    cancelled = live.post(f"/api/jobs/{long['job_id']}/cancel")
    assert cancelled.status_code == 202 and cancelled.json()["cancel_requested"] is True
    final = job_waiter(live, long["job_id"], timeout=30)
    assert final["status"] == "cancelled" and final["error"] == "cancelled on request"  # cooperative, not forced
    assert time.monotonic() - started < 5.0
    again = live.post(f"/api/jobs/{long['job_id']}/cancel")
    assert again.status_code == 409 and "already finished (cancelled)" in again.json()["detail"]
    run = live.get(f"/api/runs/{long['run_id']}").json()
    assert run["status"] == "cancelled" and run["projections"] == [] and run["clusterings"] == []
    run_dir = live.app.state.registry.get_run(long["run_id"]).run_dir
    assert os.path.exists(os.path.join(run_dir, "checkpoint.pt"))  # finished epochs are kept

    failed = job_waiter(live, doomed.json()["job_id"], timeout=60)
    assert failed["status"] == "failed"
    assert "vanishing" in failed["error"] and "Traceback" not in failed["error"]
    assert live.get(f"/api/runs/{doomed.json()['run_id']}").json()["status"] == "failed"
    assert live.get("/api/health").json()["workers_alive"] == 1


def test_a_killed_worker_fails_its_job_and_is_replaced(live: TestClient, job_waiter) -> None:
    started = live.post("/api/runs", json=LONG).json()
    running_epoch(live, started["job_id"], 1)
    pid = worker_pid_of(live, started["job_id"])
    os.kill(pid, signal.SIGKILL)
    failed = job_waiter(live, started["job_id"], timeout=30)
    assert failed["status"] == "failed"
    assert failed["error"] == ("the worker process running this job died: killed by SIGKILL"
                               " (the system may have run out of memory)")
    deadline = time.monotonic() + 30
    while live.get("/api/health").json()["workers_alive"] != 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert live.get("/api/health").json()["workers_alive"] == 1
    assert pid not in live.app.state.runner.worker_pids()


def test_a_worker_that_ignores_cancel_is_stopped_by_force(live: TestClient, job_waiter) -> None:
    started = live.post("/api/runs", json=LONG).json()
    running_epoch(live, started["job_id"], 1)
    pid = worker_pid_of(live, started["job_id"])
    os.kill(pid, signal.SIGSTOP)  # frozen: it can no longer see the cancel request
    try:
        assert live.post(f"/api/jobs/{started['job_id']}/cancel").status_code == 202
        final = job_waiter(live, started["job_id"], timeout=30)
    finally:
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
    assert final["status"] == "cancelled"
    assert final["error"] == "cancelled: stopped by force after 2 s without a reply"
    assert pid not in live.app.state.runner.worker_pids()


def test_a_run_end_to_end_with_live_events(live: TestClient, job_waiter) -> None:
    created = live.post("/api/runs", json={"dataset": "digits", "method": "ae", "epochs": 2, "embedding_dim": 8})
    assert created.status_code == 202
    ids = created.json()
    events = []
    with live.stream("GET", f"/api/jobs/{ids['job_id']}/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        kind = None
        for line in stream.iter_lines():
            if line.startswith("event:"):
                kind = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                events.append((kind, json.loads(line.split(":", 1)[1])))
    assert events[-1][0] == "end" and events[-1][1]["status"] == "succeeded" and events[-1][1]["progress"] == 1.0
    progress = [data for kind, data in events if kind == "progress"]
    assert progress and all(set(data) == {"id", "status", "progress", "metrics"} for data in progress)
    with_loss = [data["metrics"] for data in progress if "loss" in data["metrics"]]
    assert with_loss and with_loss[-1]["epochs"] == 2 and with_loss[-1]["loss"] > 0

    # the default map follows without a click: a projection and a k-means clustering
    def analyses_done() -> dict | None:
        run = live.get(f"/api/runs/{ids['run_id']}").json()
        items = run["projections"] + run["clusterings"]
        return run if len(items) == 2 and all(item["status"] == "succeeded" for item in items) else None

    deadline, run = time.monotonic() + 120, None
    while run is None and time.monotonic() < deadline:
        run = analyses_done()
        time.sleep(0.2)
    assert run is not None, live.get(f"/api/runs/{ids['run_id']}").json()
    assert run["projections"][0]["method"] == "pca"
    assert run["clusterings"][0]["method"] == "kmeans" and run["clusterings"][0]["params"]["n_clusters"] == 10

    points = live.get(f"/api/runs/{ids['run_id']}/points").json()
    x = np.frombuffer(base64.b64decode(points["x"]), "<f4")
    y = np.frombuffer(base64.b64decode(points["y"]), "<f4")
    assert x.shape == y.shape == (1797,) and np.isfinite(x).all() and np.isfinite(y).all()
    assert np.frombuffer(base64.b64decode(points["cluster"]), "<i4").max() == 9
    image = live.get("/api/datasets/digits/images/0")
    assert image.status_code == 200 and image.content[:8] == b"\x89PNG\r\n\x1a\n"


def _nice(pid: int) -> int:
    return int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[16])


def test_the_warm_up_never_runs_in_a_worker_nor_at_a_jobs_priority(tmp_path, settings_factory, job_waiter) -> None:
    """The numba warm-up is a process of its own at nice 19; the worker takes a training job at once
    (at the server's priority) and the job succeeds while or after the warm-up runs; health reports its state."""
    with TestClient(create_app(settings_factory(tmp_path / "data", warm_up=True))) as client:
        runner = client.app.state.runner
        warm_up_pid = runner.warm_up_pid()
        assert warm_up_pid is not None and warm_up_pid not in runner.worker_pids()
        assert client.get("/api/health").json()["warm_up"] in ("running", "done")
        if runner.warm_up_state() == "running":
            assert _nice(warm_up_pid) == 19
        body = client.post("/api/runs", json={"dataset": "digits", "method": "ae", "epochs": 2}).json()
        assert job_waiter(client, body["job_id"])["status"] == "succeeded"
        assert [_nice(pid) for pid in runner.worker_pids()] == [_nice(os.getpid())]  # the server's own priority
        deadline = time.monotonic() + 240
        while client.get("/api/health").json()["warm_up"] == "running" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert client.get("/api/health").json()["warm_up"] == "done"


def test_health_says_the_warm_up_is_off_when_disabled(live: TestClient) -> None:
    assert live.get("/api/health").json()["warm_up"] == "off"
