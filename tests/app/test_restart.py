"""A job left running by a process that died is `interrupted` at the next start, and resumes from
its checkpoint to the end."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from fastapi.testclient import TestClient

from app.main import create_app
from app.registry import Registry


def test_a_killed_cli_training_is_interrupted_then_resumed_to_success(tmp_path: Path, settings_factory,
                                                                      job_waiter) -> None:
    data_dir = tmp_path / "data"
    epochs = 6
    command = [sys.executable, "-m", "app.cli", "train", "--dataset", "digits", "--method", "ae",
               "--epochs", str(epochs), "--embedding-dim", "8", "--data-dir", str(data_dir)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        checkpoint = None
        while checkpoint is None and time.monotonic() < deadline:
            found = list((data_dir / "runs").glob("*/checkpoint.pt")) if (data_dir / "runs").exists() else []
            checkpoint = found[0] if found else None
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
            time.sleep(0.02)
        assert checkpoint is not None, "the CLI never wrote a checkpoint"
    finally:
        process.send_signal(signal.SIGKILL)  # the process dies mid-run, leaving its job row `running`
        process.wait()
    run_id = checkpoint.parent.name
    registry = Registry(data_dir / "latentmap.sqlite3")
    left = registry.get_job(registry.get_run(run_id).job_id)
    assert left.status == "running" and left.worker_pid == process.pid

    with TestClient(create_app(settings_factory(data_dir))) as client:
        job = client.get(f"/api/jobs/{left.id}").json()
        assert job["status"] == "interrupted"
        assert job["error"] == "the process running this job stopped (server restart)"
        assert client.get(f"/api/runs/{run_id}").json()["status"] == "interrupted"

        import torch

        saved = torch.load(checkpoint, weights_only=True)["history"]
        assert 1 <= len(saved) < epochs
        resumed = client.post(f"/api/jobs/{left.id}/resume")
        assert resumed.status_code == 202 and resumed.json()["status"] == "queued"
        final = job_waiter(client, left.id, timeout=120)
        assert final["status"] == "succeeded", final
        run = client.get(f"/api/runs/{run_id}").json()
        assert run["status"] == "succeeded" and run["config"]["epochs"] == epochs
        assert [row["epoch"] for row in run["history"]] == list(range(1, epochs + 1))
        assert run["history"][: len(saved)] == saved  # continued from the checkpoint, not from scratch

        again = client.post(f"/api/jobs/{left.id}/resume")
        assert again.status_code == 409 and "is succeeded" in again.json()["detail"]
        assert client.post("/api/jobs/jnope/resume").status_code == 404
        projection = client.get(f"/api/runs/{run_id}").json()["projections"]
        assert projection == []  # a CLI run gets no automatic analyses


def test_resume_needs_a_checkpoint_and_a_training_job(tmp_path: Path, settings_factory) -> None:
    data_dir = tmp_path / "data"
    registry = Registry(data_dir / "latentmap.sqlite3").open()
    registry.create_run("r1", "digits", "ae", {"epochs": 1}, data_dir / "runs" / "r1")
    train = registry.create_job("train", "r1", {"config": {}}, status="running", worker_pid=None)
    project = registry.create_job("project", "r1", {}, status="running", worker_pid=None)
    with TestClient(create_app(settings_factory(data_dir))) as client:
        no_checkpoint = client.post(f"/api/jobs/{train.id}/resume")
        assert no_checkpoint.status_code == 409 and "no checkpoint" in no_checkpoint.json()["detail"]
        not_training = client.post(f"/api/jobs/{project.id}/resume")
        assert not_training.status_code == 409 and "only training jobs" in not_training.json()["detail"]
