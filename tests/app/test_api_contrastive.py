"""MoCo and BYOL through /api/methods, POST /api/runs and the CLI: described, trained by a worker,
and bad parameters refused before any work (422 naming the field; exit 2 with one line)."""
from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.cli import main
from app.main import create_app


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, settings_factory):
    with TestClient(create_app(settings_factory(tmp_path_factory.mktemp("contrastive") / "data"))) as client:
        yield client


def test_methods_describe_moco_and_byol_with_defaults_for_a_dataset(api: TestClient) -> None:
    training = api.get("/api/methods").json()["training"]
    moco = {spec["name"]: spec for spec in training["moco"]["params"]}
    assert moco["queue_size"]["type"] == "int" and moco["queue_size"]["default"] == 2048
    assert moco["temperature"]["exclusive_minimum"] is True and moco["momentum"]["default"] == 0.99
    byol = {spec["name"]: spec for spec in training["byol"]["params"]}
    assert set(byol) == {"momentum", "predictor_hidden", "augmentation_strength"}
    for_digits = api.get("/api/methods", params={"dataset": "digits"}).json()["training"]
    assert for_digits["moco"]["defaults"] == {"epochs": 30, "lr": 0.002, "batch_size": 256, "embedding_dim": 32, "snapshots": 8}
    assert for_digits["byol"]["defaults"]["epochs"] == 30


@pytest.mark.parametrize(("method", "body", "field"), [
    ("moco", {"batch_size": 128, "method_params": {"queue_size": 64}}, "queue_size"),
    ("moco", {"method_params": {"queue_size": 128}}, "queue_size"),  # the digits default batch is 256
    ("moco", {"method_params": {"momentum": 1.0}}, "momentum"),
    ("moco", {"method_params": {"temperature": 0}}, "temperature"),
    ("byol", {"method_params": {"momentum": -0.1}}, "momentum"),
    ("byol", {"method_params": {"momentum": 1}}, "momentum"),
    ("byol", {"method_params": {"temperature": 0.1}}, "temperature"),  # BYOL has no temperature
])
def test_bad_parameters_are_refused_with_422_naming_the_field(api: TestClient, method: str, body: dict, field: str) -> None:
    before = len(api.get("/api/runs").json())
    refused = api.post("/api/runs", json={"dataset": "digits", "method": method, **body})
    assert refused.status_code == 422 and field in refused.json()["detail"], refused.json()
    assert len(api.get("/api/runs").json()) == before  # nothing recorded


@pytest.mark.parametrize("method", ["moco", "byol"])
def test_a_worker_trains_moco_and_byol(api: TestClient, job_waiter, method: str) -> None:
    params = {"queue_size": 64} if method == "moco" else {}
    created = api.post("/api/runs", json={"dataset": "digits", "method": method, "epochs": 1, "batch_size": 64,
                                          "embedding_dim": 4, "method_params": params})
    assert created.status_code == 202
    job = job_waiter(api, created.json()["job_id"], timeout=240, statuses=("succeeded", "failed"))
    assert job["status"] == "succeeded", job["error"]
    run = api.get(f"/api/runs/{created.json()['run_id']}").json()
    assert run["method"] == method and run["config"]["method_params"]["momentum"] == 0.99


@pytest.mark.parametrize(("argv", "words"), [
    (["--method", "moco", "--batch-size", "128", "--param", "queue_size=100"], "queue_size must be >= the batch size (128)"),
    (["--method", "moco", "--param", "queue_size=100"], "queue_size must be >= the batch size (256)"),
    (["--method", "moco", "--param", "momentum=1"], "momentum must be < 1"),
    (["--method", "byol", "--param", "momentum=2"], "momentum must be <= 1"),
    (["--method", "moco", "--param", "temperature=0"], "temperature must be > 0"),
])
def test_the_cli_refuses_bad_parameters_with_exit_2_and_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                 argv: list[str], words: str) -> None:
    assert main(["train", "--dataset", "digits", *argv, "--data-dir", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert captured.out == "" and len(lines) == 1 and words in lines[0], captured.err
