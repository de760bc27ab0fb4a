"""`latentmap doctor` on constructed damage: it finds each problem without changing anything, and
`--repair` mends each one so that a second look finds the data directory clean."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app import tasks
from app.cli import main
from app.registry import Registry


def _doctor(capsys: pytest.CaptureFixture[str], data_dir: Path, *flags: str) -> tuple[int, dict]:
    code = main(["doctor", "--data-dir", str(data_dir), "--json", *flags])
    return code, json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.fixture
def damaged(tiny_run, run_trainer, tmp_path: Path) -> dict:
    """A data directory with two finished runs, then: one projection's coords.npy deleted, the
    second run's rows dropped from the registry (its folder intact), a job left running by a dead
    process, an incomplete run folder nobody knows, and an uploaded dataset whose folder is gone."""
    data_dir = tmp_path / "data"
    shutil.copytree(tiny_run.data_dir, data_dir)
    second = run_trainer(data_dir, method="ae", epochs=1, seed=1)
    registry = Registry(data_dir / "latentmap.sqlite3").open()
    (data_dir / "runs" / tiny_run.run_id / "projections" / tiny_run.projection_id / "coords.npy").unlink()
    registry.delete_run(second.run_id)
    stale_projection, stale = tasks.queue_projection(registry, tiny_run.run_id, "umap", {}, status="running",
                                                     worker_pid=_dead_pid())
    (data_dir / "runs" / "rhalfwritten").mkdir()
    (data_dir / "runs" / "rhalfwritten" / "config.json").write_text("{}")
    (data_dir / "datasets" / "shoes").mkdir(parents=True)
    registry.add_dataset("shoes", data_dir / "datasets" / "shoes", 3, {"classes": []})
    shutil.rmtree(data_dir / "datasets" / "shoes")
    return {"data_dir": data_dir, "registry": registry, "first": tiny_run, "second": second, "stale_job": stale.id,
            "stale_projection": stale_projection}


def test_doctor_finds_each_problem_and_changes_nothing(damaged: dict, capsys) -> None:
    registry_file = damaged["data_dir"] / "latentmap.sqlite3"
    before = [run.status for run in damaged["registry"].list_runs()]
    code, report = _doctor(capsys, damaged["data_dir"])
    assert code == 1 and report["clean"] is False
    subjects = sorted(problem["subject"] for problem in report["problems"])
    first, second = damaged["first"], damaged["second"]
    assert subjects == sorted([
        f"projection {first.projection_id} of run {first.run_id}",
        f"directory runs/{second.run_id}",
        f"job {damaged['stale_job']} (project of run {first.run_id})",
        "directory runs/rhalfwritten",
        "dataset shoes",
    ])
    assert not any(problem["mended"] for problem in report["problems"])
    assert [run.status for run in damaged["registry"].list_runs()] == before
    assert damaged["registry"].get_projection(first.projection_id).status == "succeeded"
    assert damaged["registry"].get_job(damaged["stale_job"]).status == "running"
    assert registry_file.exists()


def test_doctor_repair_mends_each_problem(damaged: dict, capsys) -> None:
    registry: Registry = damaged["registry"]
    first, second = damaged["first"], damaged["second"]
    code, report = _doctor(capsys, damaged["data_dir"], "--repair")
    assert code == 1  # it found problems
    mended = {problem["subject"]: problem["mended"] for problem in report["problems"]}
    assert mended.pop("directory runs/rhalfwritten") is False  # incomplete: never deleted, only reported
    assert all(mended.values()) and len(mended) == 4

    projection = registry.get_projection(first.projection_id)
    assert projection.status == "failed"
    assert "coords.npy is missing" in registry.get_job(projection.job_id).error
    assert registry.get_run(first.run_id).status == "succeeded"  # its embedding is intact

    stale = registry.get_job(damaged["stale_job"])
    assert stale.status == "interrupted" and "latentmap doctor" in stale.error
    assert registry.get_projection(damaged["stale_projection"]).status == "interrupted"

    restored = registry.get_run(second.run_id)
    assert restored.status == "succeeded" and restored.method == "ae" and restored.dataset == "digits"
    assert restored.metrics["knn_accuracy"] is not None
    assert registry.get_projection(second.projection_id).status == "succeeded"
    assert registry.get_projection(second.projection_id).metrics["trustworthiness"] > 0.5
    assert registry.get_clustering(second.clustering_id).on == "embedding"
    assert registry.get_dataset("shoes") is None
    assert (damaged["data_dir"] / "runs" / "rhalfwritten").is_dir()

    code, report = _doctor(capsys, damaged["data_dir"])
    assert code == 1 and [problem["subject"] for problem in report["problems"]] == ["directory runs/rhalfwritten"]
    shutil.rmtree(damaged["data_dir"] / "runs" / "rhalfwritten")
    assert _doctor(capsys, damaged["data_dir"]) == (0, {"data_dir": str(damaged["data_dir"]), "clean": True, "problems": []})


def test_a_repaired_orphan_run_serves_its_map(damaged: dict, capsys, settings_factory) -> None:
    from fastapi.testclient import TestClient

    from app.main import create_app

    _doctor(capsys, damaged["data_dir"], "--repair")
    second = damaged["second"]
    with TestClient(create_app(settings_factory(damaged["data_dir"]))) as client:
        answer = client.get(f"/api/runs/{second.run_id}/points", params={"projection": second.projection_id,
                                                                          "clustering": second.clustering_id})
        assert answer.status_code == 200, answer.text
        assert answer.json()["n"] == 1797


def test_doctor_on_a_clean_data_dir_prints_no_problems(tiny_run, tmp_path: Path, capsys) -> None:
    data_dir = tmp_path / "data"
    shutil.copytree(tiny_run.data_dir, data_dir)
    assert main(["doctor", "--data-dir", str(data_dir)]) == 0
    assert capsys.readouterr().out.strip() == f"latentmap doctor: {data_dir}: no problems"
