"""MoCo and BYOL through /api/methods, POST /api/runs and the CLI: described, trained by a worker,
and bad parameters refused before any work (422 naming the field; exit 2 with one line)."""
from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app import catalog
from app.cli import main
from app.main import create_app
from app.model_worker import MODEL_WORKER


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, settings_factory):
    with TestClient(create_app(settings_factory(tmp_path_factory.mktemp("contrastive") / "data"))) as client:
        yield client
    MODEL_WORKER.close()  # the decoder's process, started by the interpolation below


def test_methods_describe_moco_and_byol_with_defaults_for_a_dataset(api: TestClient) -> None:
    training = api.get("/api/methods").json()["training"]
    moco = {spec["name"]: spec for spec in training["moco"]["params"]}
    assert moco["queue_size"]["type"] == "int" and moco["queue_size"]["default"] == 2048
    assert moco["temperature"]["exclusive_minimum"] is True and moco["momentum"]["default"] == 0.99
    byol = {spec["name"]: spec for spec in training["byol"]["params"]}
    assert set(byol) == {"momentum", "predictor_hidden", "augmentation_strength", "reconstruction_weight"}
    assert byol["reconstruction_weight"]["default"] == moco["reconstruction_weight"]["default"] == 30.0
    for_digits = api.get("/api/methods", params={"dataset": "digits"}).json()["training"]
    assert for_digits["moco"]["defaults"] == {"epochs": 30, "lr": 0.002, "batch_size": 256, "embedding_dim": 32, "snapshots": 8}
    assert for_digits["byol"]["defaults"]["epochs"] == 30
    # The 8×8 digits are rebuilt by no decoder unless asked: the parameter's default there is 0.
    assert {spec["name"]: spec["default"] for spec in for_digits["moco"]["params"]}["reconstruction_weight"] == 0.0
    assert {spec["name"]: spec["default"] for spec in for_digits["moco"]["params"]}["queue_size"] == 2048


@pytest.mark.parametrize(("method", "body", "field"), [
    ("moco", {"batch_size": 128, "method_params": {"queue_size": 64}}, "queue_size"),
    ("moco", {"method_params": {"queue_size": 128}}, "queue_size"),  # the digits default batch is 256
    ("moco", {"method_params": {"momentum": 1.0}}, "momentum"),
    ("moco", {"method_params": {"temperature": 0}}, "temperature"),
    ("byol", {"method_params": {"momentum": -0.1}}, "momentum"),
    ("byol", {"method_params": {"momentum": 1}}, "momentum"),
    ("byol", {"method_params": {"temperature": 0.1}}, "temperature"),  # BYOL has no temperature
    ("simclr", {"method_params": {"reconstruction_weight": -1}}, "reconstruction_weight"),
])
def test_bad_parameters_are_refused_with_422_naming_the_field(api: TestClient, method: str, body: dict, field: str) -> None:
    before = len(api.get("/api/runs").json())
    refused = api.post("/api/runs", json={"dataset": "digits", "method": method, **body})
    assert refused.status_code == 422 and field in refused.json()["detail"], refused.json()
    assert len(api.get("/api/runs").json()) == before  # nothing recorded


@pytest.mark.parametrize(("method", "params"), [("moco", {"queue_size": 64, "reconstruction_weight": 5}), ("byol", {})])
def test_a_worker_trains_moco_and_byol(api: TestClient, job_waiter, method: str, params: dict) -> None:
    created = api.post("/api/runs", json={"dataset": "digits", "method": method, "epochs": 1, "batch_size": 64,
                                          "embedding_dim": 4, "method_params": params})
    assert created.status_code == 202
    job = job_waiter(api, created.json()["job_id"], timeout=240, statuses=("succeeded", "failed"))
    assert job["status"] == "succeeded", job["error"]
    run_id = created.json()["run_id"]
    run = api.get(f"/api/runs/{run_id}").json()
    assert run["method"] == method and run["config"]["method_params"]["momentum"] == 0.99
    # With a reconstruction weight the run has a decoder: a reconstruction sample, and decoding works.
    weight = params.get("reconstruction_weight", 0.0)  # the 8×8 digits' default: no decoder
    assert run["config"]["method_params"]["reconstruction_weight"] == weight
    with_decoder = weight > 0
    assert run["has_decoder"] is run["has_reconstructions"] is with_decoder
    interpolated = api.get(f"/api/runs/{run_id}/interpolate?a=0&b=1&steps=3")
    assert interpolated.status_code == (200 if with_decoder else 409), interpolated.text


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


def test_the_reconstruction_weight_defaults_to_none_for_tiny_images_only() -> None:
    tiny = catalog.train_config("digits", "moco", (1, 8, 8), 1797, {}, None)
    grey = catalog.train_config("fashion-mnist", "moco", (1, 28, 28), 70000, {}, None)
    asked = catalog.train_config("digits", "byol", (1, 8, 8), 1797, {}, {"reconstruction_weight": 3})
    assert tiny["method_params"]["reconstruction_weight"] == 0.0
    assert grey["method_params"]["reconstruction_weight"] == 30.0
    assert asked["method_params"]["reconstruction_weight"] == 3.0
    assert catalog.train_config("digits", "dae", (1, 8, 8), 1797, {}, None)["method_params"] == {"noise_std": 0.3}
