"""The Ray backend end to end on a real local Ray cluster (`ray start --head`, 2 CPUs and 1 declared
GPU: the GPU is not real, so training falls back to the CPU while Ray's GPU placement is exercised)
and a real `latentmap serve` with LATENTMAP_BACKEND=ray: runs on digits become Ray jobs, progress,
cancel, a Ray job that dies or is stopped from outside, and a server restart while a job runs."""
from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.ray
pytest.importorskip("ray", reason="the Ray backend's tests need Ray: pip install -e '.[ray]' (make install does)")
from ray.job_submission import JobDetails, JobStatus, JobSubmissionClient  # noqa: E402

from live_server import REPO, LiveServer, job_of, start_training, wait_for, wait_job, wait_run_complete  # noqa: E402
from ray_head import RayHead  # noqa: E402

LONG_TRAINING = 3000  # epochs: far longer than any test waits; every test ends it itself


@pytest.fixture(scope="module")
def head() -> Any:
    head = RayHead.start(num_cpus=2, num_gpus=1)
    try:
        yield head
    finally:
        head.stop()  # also when a test failed: no Ray process outlives the module


@pytest.fixture(scope="module")
def ray_client(head: RayHead) -> JobSubmissionClient:
    return JobSubmissionClient(head.address)


@pytest.fixture(scope="module")
def server(head: RayHead, tmp_path_factory: pytest.TempPathFactory) -> Any:
    data_dir = tmp_path_factory.mktemp("ray-backend") / "data"
    server = LiveServer(data_dir, LATENTMAP_BACKEND="ray", LATENTMAP_RAY_ADDRESS=head.address,
                        LATENTMAP_RAY_TRAINING_GPUS="1")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def ray_job_of(client: JobSubmissionClient, job_id: str) -> JobDetails:
    """The latest Ray job submitted for latentmap job `job_id`."""
    found = [details for details in client.list_jobs() if (details.metadata or {}).get("latentmap_job") == job_id]
    assert found, f"no Ray job for latentmap job {job_id}"
    return max(found, key=lambda details: details.start_time or 0)


def events_of(server: LiveServer, job_id: str) -> list[tuple[str, dict[str, Any]]]:
    """Every server-sent event of the job, until the stream ends."""
    events, name = [], None
    with server.client.stream("GET", f"/api/jobs/{job_id}/events", timeout=180) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and name is not None:
                events.append((name, json.loads(line.split(":", 1)[1])))
    return events


def wait_epoch(server: LiveServer, job_id: str, epoch: int = 1, timeout: float = 120.0) -> dict[str, Any]:
    """The training job, once it runs and has finished `epoch` epochs (so a checkpoint exists)."""
    return wait_for(lambda: (job := job_of(server, job_id))["status"] == "running"
                    and (job.get("metrics") or {}).get("epoch", 0) >= epoch and job, timeout, f"job {job_id} epoch {epoch}")


def test_a_run_is_trained_projected_and_clustered_as_ray_jobs(server: LiveServer, head: RayHead,
                                                             ray_client: JobSubmissionClient) -> None:
    health = server.client.get("/api/health").json()
    assert health["backend"] == "ray"
    assert health["cluster"] == {"address": head.address, "reachable": True, "error": None}

    run_id, job_id = start_training(server, epochs=6)
    events = events_of(server, job_id)
    running = [data for name, data in events if name == "progress" and data["status"] == "running"]
    assert [data["metrics"]["epoch"] for data in running if "epoch" in data["metrics"]], events
    assert all(0.0 <= data["progress"] <= 1.0 for data in running)
    assert events[-1][0] == "end" and events[-1][1]["status"] == "succeeded"

    run = wait_run_complete(server, run_id)
    assert run["status"] == "succeeded"
    analyses = run["projections"] + run["clusterings"]
    assert sorted(a["method"] for a in analyses) == ["kmeans", "pca"] and {a["status"] for a in analyses} == {"succeeded"}

    def ray_jobs_ended() -> list[JobDetails] | None:  # a job's process exits just after recording its end
        found = [details for details in ray_client.list_jobs() if (details.metadata or {}).get("run") == run_id]
        return found if all(details.status.is_terminal() for details in found) else None

    mine = wait_for(ray_jobs_ended, 30, "the run's Ray jobs to end")
    assert sorted(details.metadata["kind"] for details in mine) == ["cluster", "project", "train"]
    assert {details.status for details in mine} == {JobStatus.SUCCEEDED}
    by_job = {details.metadata["latentmap_job"]: details for details in mine}
    assert set(by_job) == {job_id, *(a["job_id"] for a in analyses)}
    # The training job was placed on the (declared) GPU; without CUDA it trained on the CPU.
    assert f"(train, run {run_id}): CUDA_VISIBLE_DEVICES=0\n" in ray_client.get_job_logs(by_job[job_id].submission_id)
    for analysis in analyses:  # analyses ask Ray for no GPU
        assert "CUDA_VISIBLE_DEVICES=(unset)\n" in ray_client.get_job_logs(by_job[analysis["job_id"]].submission_id)
    config = json.loads((server.data_dir / "runs" / run_id / "config.json").read_text())
    assert config["device_resolved"] == "cpu"

    points = server.client.get(f"/api/runs/{run_id}/points")
    assert points.status_code == 200, points.text
    body = points.json()
    assert body["n"] == 1797 and len(base64.b64decode(body["x"])) == 1797 * 4
    assert len(set(base64.b64decode(body["cluster"])[::4])) == 10
    image = server.client.get("/api/datasets/digits/images/5")
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"


def test_cancel_stops_a_long_training_cooperatively(server: LiveServer, ray_client: JobSubmissionClient) -> None:
    run_id, job_id = start_training(server, epochs=LONG_TRAINING)
    wait_epoch(server, job_id)
    assert server.client.post(f"/api/jobs/{job_id}/cancel").status_code == 202
    job = wait_job(server, job_id, timeout=60)
    assert job["status"] == "cancelled" and job["error"] == "cancelled on request"  # seen by the progress callback
    assert (server.data_dir / "runs" / run_id / "checkpoint.pt").exists()
    details = wait_for(lambda: (d := ray_job_of(ray_client, job_id)).status.is_terminal() and d, 30, "the Ray job to end")
    assert details.status == JobStatus.SUCCEEDED  # it stopped by itself: no stop_job needed


def entrypoint_pid(job_id: str) -> int | None:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"app.jobs.ray_entry" in cmdline and job_id.encode() in cmdline:
                return int(entry)
    return None


def finished_run(server: LiveServer) -> str:
    runs = [run["id"] for run in server.client.get("/api/runs").json() if run["status"] == "succeeded"]
    assert runs, "the first test leaves a finished run"
    return runs[-1]


def start_long_projection(server: LiveServer, run_id: str) -> str:
    """A t-SNE that runs for minutes unless stopped: a Ray job that needs no GPU and no torch."""
    response = server.client.post(f"/api/runs/{run_id}/projections",
                                  json={"method": "tsne", "params": {"n_iter": 10_000, "early_exaggeration_iter": 5_000}})
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    wait_for(lambda: job_of(server, job_id)["status"] == "running" and entrypoint_pid(job_id), 60,
             f"projection job {job_id} to run on Ray")
    return job_id


@pytest.mark.parametrize("how", ["killed", "stopped"])
def test_a_ray_job_ended_from_outside_fails_the_job_with_rays_reason(server: LiveServer, ray_client: JobSubmissionClient,
                                                                    how: str) -> None:
    job_id = start_long_projection(server, finished_run(server))
    submission_id = ray_job_of(ray_client, job_id).submission_id
    if how == "killed":  # the job's process dies (as when the system runs out of memory)
        os.kill(entrypoint_pid(job_id) or 0, signal.SIGKILL)
    else:  # someone runs `ray job stop` (or the dashboard's Stop)
        ray_client.stop_job(submission_id)
    job = wait_job(server, job_id, timeout=60)
    assert job["status"] == "failed"
    if how == "killed":
        assert job["error"] == (f"Ray job {submission_id} failed (Job entrypoint command failed with exit code 137:"
                                f" killed by SIGKILL (the system may have run out of memory))")
    else:
        assert job["error"].startswith(f"Ray job {submission_id} was stopped outside latentmap ("), job["error"]
    projection = server.client.get(f"/api/runs/{job['run_id']}").json()["projections"]
    assert [p["status"] for p in projection if p["id"] == job["target_id"]] == ["failed"]


def test_a_restarted_server_reattaches_to_running_ray_jobs_and_interrupts_lost_ones(
        server: LiveServer, ray_client: JobSubmissionClient) -> None:
    finished = finished_run(server)
    points_before = server.client.get(f"/api/runs/{finished}/points").json()
    _, training_id = start_training(server, epochs=LONG_TRAINING)
    lost_id = start_long_projection(server, finished)  # beside the training: it needs no GPU
    before = wait_epoch(server, training_id)["metrics"]["epoch"]

    server.sigkill()  # the Ray jobs are not the server's children: they go on
    lost = ray_job_of(ray_client, lost_id).submission_id
    ray_client.stop_job(lost)  # while no server watches, the cluster loses this one altogether
    wait_for(lambda: ray_client.get_job_status(lost).is_terminal(), 30, "the Ray job to stop")
    ray_client.delete_job(lost)
    server.start()

    lost_job = job_of(server, lost_id)
    assert lost_job["status"] == "interrupted"
    assert lost_job["error"] == "the process running this job stopped (server restart)"
    assert ray_job_of(ray_client, training_id).status == JobStatus.RUNNING
    wait_epoch(server, training_id, before + 2)  # re-attached: still running, still reporting through the registry
    assert server.client.post(f"/api/jobs/{training_id}/cancel").status_code == 202  # and a cancel reaches it
    assert wait_job(server, training_id, timeout=60)["status"] == "cancelled"
    assert server.client.get(f"/api/runs/{finished}").json()["status"] == "succeeded"  # finished runs are intact
    assert server.client.get(f"/api/runs/{finished}/points").json() == points_before


def serve_error(**env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app.cli", "serve", "--port", "1"], cwd=REPO, capture_output=True,
                          text=True, timeout=60, env={**os.environ, **env})


def test_serve_refuses_an_unknown_backend_and_an_unreachable_cluster_in_one_line(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    unknown = serve_error(LATENTMAP_BACKEND="spark", LATENTMAP_DATA_DIR=data)
    assert unknown.returncode == 2
    assert unknown.stderr == "latentmap serve: error: setting backend: Input should be 'local' or 'ray'\n"
    unreachable = serve_error(LATENTMAP_BACKEND="ray", LATENTMAP_RAY_ADDRESS="http://127.0.0.1:9", LATENTMAP_DATA_DIR=data)
    assert unreachable.returncode == 2 and unreachable.stderr.count("\n") == 1
    assert unreachable.stderr.startswith("latentmap serve: error: the Ray cluster at LATENTMAP_RAY_ADDRESS=http://127.0.0.1:9"
                                         " does not answer (")


def test_while_the_cluster_is_down_a_new_run_waits_queued_and_runs_once_it_answers(server: LiveServer,
                                                                                  head: RayHead) -> None:
    """Last: it stops the module's head (the next head answers at the same job server address)."""
    head.stop()
    health = wait_for(lambda: not (h := server.client.get("/api/health").json())["cluster"]["reachable"] and h, 30,
                      "the health check to see the cluster gone")
    assert health["cluster"]["error"].startswith(f"the Ray cluster at {head.address} does not answer")
    assert health["workers_ready"] == 0
    response = server.client.post("/api/runs", json={"dataset": "digits", "method": "ae", "epochs": 2, "seed": 3})
    assert response.status_code == 202, response.text
    assert job_of(server, response.json()["job_id"])["status"] == "queued"

    again = RayHead.start(num_cpus=2, num_gpus=1, dashboard_port=head.dashboard_port)
    try:
        run = wait_run_complete(server, response.json()["run_id"])
        assert run["status"] == "succeeded"
        assert server.client.get("/api/health").json()["cluster"]["reachable"] is True
    finally:
        again.stop()
