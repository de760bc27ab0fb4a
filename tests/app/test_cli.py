"""The `latentmap` command: --json output, exit codes and one-line errors."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from app.cli import CLUSTERING_METHODS, PROJECTION_METHODS, TRAIN_METHODS, main


def last_json(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


def test_train_json_through_the_console_script(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "latentmap"
    result = subprocess.run([str(script), "train", "--dataset", "digits", "--method", "ae", "--epochs", "1",
                             "--embedding-dim", "4", "--seed", "3", "--snapshots", "0", "--json", "--data-dir", str(tmp_path)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no progress bar when stderr is not a terminal
    body = last_json(result.stdout)
    assert (body["dataset"], body["method"], body["embedding_shape"]) == ("digits", "ae", [1797, 4])
    metrics = body["metrics"]
    assert set(metrics) >= {"knn_accuracy", "linear_probe_accuracy", "final_loss", "train_seconds", "images_per_second"}
    assert 0.1 < metrics["knn_accuracy"] <= 1 and metrics["final_loss"] > 0 and metrics["images_per_second"] > 0
    embedding = np.load(tmp_path / "runs" / body["run_id"] / "embeddings.npy")
    assert embedding.shape == (1797, 4) and embedding.dtype == np.float32
    assert body["config"]["snapshots"] == 0 and not (tmp_path / "runs" / body["run_id"] / "snapshots").exists()


def test_runs_project_and_cluster_json(tiny_run, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # On a copy: the session's tiny_run is shared read-only (test_api_runs counts its analyses), and the
    # test modules run in any order on the suite's two workers.
    data_dir = tmp_path / "data"
    shutil.copytree(tiny_run.data_dir, data_dir)
    run_dir = data_dir / "runs" / tiny_run.run_id
    data = ["--data-dir", str(data_dir)]
    assert main(["runs", "--json", *data]) == 0
    runs = last_json(capsys.readouterr().out)["runs"]
    assert tiny_run.run_id in [row["run_id"] for row in runs]

    assert main(["project", tiny_run.run_id, "--method", "pca", "--param", "n_components=2", "--json", *data]) == 0
    projected = last_json(capsys.readouterr().out)
    assert set(projected) >= {"projection_id", "run_id", "method", "seconds", "trustworthiness"}
    assert projected["run_id"] == tiny_run.run_id and 0.5 < projected["trustworthiness"] <= 1
    coords = np.load(run_dir / "projections" / projected["projection_id"] / "coords.npy")
    assert coords.shape == (1797, 2)

    assert main(["cluster", tiny_run.run_id, "--method", "kmeans", "--on", projected["projection_id"],
                 "--param", "n_clusters=4", "--json", *data]) == 0
    clustered = last_json(capsys.readouterr().out)
    assert set(clustered) >= {"clustering_id", "run_id", "method", "n_clusters", "noise_fraction", "silhouette",
                              "ari", "nmi", "accuracy", "seconds"}
    assert clustered["n_clusters"] == 4 and clustered["noise_fraction"] == 0.0
    labels = np.load(run_dir / "clusterings" / clustered["clustering_id"] / "labels.npy")
    assert sorted(np.unique(labels)) == [0, 1, 2, 3]

    # A Gaussian mixture on the map, k from the digits' 10 classes (N2D's last step).
    assert main(["cluster", tiny_run.run_id, "--method", "gmm", "--on", projected["projection_id"],
                 "--param", "covariance_type=diag", "--json", *data]) == 0
    mixture = last_json(capsys.readouterr().out)
    assert mixture["method"] == "gmm" and mixture["n_clusters"] == 10 and mixture["noise_fraction"] == 0.0
    assert 0.1 < mixture["accuracy"] <= 1 and 0 < mixture["nmi"] <= 1  # the tiny run's 2-d PCA map mixes the digits
    mixture_labels = np.load(run_dir / "clusterings" / mixture["clustering_id"] / "labels.npy")
    assert mixture_labels.shape == (1797,) and set(np.unique(mixture_labels)) <= set(range(10))


def test_the_help_names_every_registered_method() -> None:
    from ml.analysis.clustering import CLUSTERINGS
    from ml.analysis.projection import PROJECTIONS
    from ml.methods.specs import METHOD_SPECS

    assert CLUSTERING_METHODS.split(", ") == list(CLUSTERINGS)
    assert PROJECTION_METHODS.split(", ") == list(PROJECTIONS)
    assert TRAIN_METHODS.split(", ") == list(METHOD_SPECS)


def test_datasets_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["datasets", "--json", "--data-dir", str(tmp_path)]) == 0
    rows = {row["name"]: row for row in last_json(capsys.readouterr().out)["datasets"]}
    assert rows["digits"]["available"] is True and rows["digits"]["n_images"] == 1797


@pytest.mark.parametrize(("argv", "words"), [
    (["train", "--dataset", "nope", "--method", "ae"], "unknown dataset 'nope'"),
    (["train", "--dataset", "digits", "--method", "vae"], "unknown method 'vae'; choose one of ae, dae"),
    (["train", "--dataset", "digits", "--method", "ae", "--epochs", "0"], "--epochs: must be >= 1, got 0"),
    (["train", "--dataset", "digits", "--method", "ae", "--embedding-dim", "0"], "--embedding-dim: must be >= 1"),
    (["train", "--dataset", "digits", "--method", "ae", "--lr", "abc"], "--lr: expected a number"),
    (["train", "--dataset", "digits", "--method", "ae", "--snapshots", "-1"], "--snapshots: must be >= 0"),
    (["train", "--dataset", "digits", "--method", "ae", "--snapshots", "33"], "snapshots must be a whole number from 0"),
    (["train", "--dataset", "digits", "--method", "dae", "--param", "noise=1"],
     "unknown parameter noise; allowed: noise_std"),
    (["train", "--dataset", "digits", "--method", "dae", "--param", "noise_std=9"], "noise_std must be <= 2"),
    (["train", "--dataset", "digits", "--method", "ae", "--param", "novalue"], "--param takes KEY=VALUE"),
    (["train", "--method", "ae"], "the following arguments are required: --dataset"),
    (["project", "rnope", "--method", "pca"], "no run with id 'rnope'"),
    (["cluster", "rnope", "--method", "kmeans"], "no run with id 'rnope'"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
])
def test_bad_arguments_exit_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str],
                                            words: str) -> None:
    with pytest.raises(SystemExit) as raised:
        raise SystemExit(main([*argv, "--data-dir", str(tmp_path)] if argv[0] != "frobnicate" else argv))
    assert raised.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], captured.err


def test_an_empty_folder_dataset_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    code = main(["train", "--dataset", f"folder:{tmp_path / 'empty'}", "--method", "ae", "--data-dir", str(tmp_path)])
    assert code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "no readable PNG or JPEG images" in lines[0]


def test_analysis_arguments_of_a_real_run_exit_2(tiny_run, capsys: pytest.CaptureFixture[str]) -> None:
    data = ["--data-dir", str(tiny_run.data_dir)]
    for argv, words in [
        (["project", tiny_run.run_id, "--method", "mds"], "unknown projection method 'mds'; choose one of pca"),
        (["project", tiny_run.run_id, "--method", "pca", "--param", "bogus=1"], "allowed: n_components"),
        (["cluster", tiny_run.run_id, "--method", "kmeans", "--param", "n_clusters=1"], "n_clusters must be >= 2"),
        (["cluster", tiny_run.run_id, "--method", "kmeans", "--on", "pnope"], "--on 'pnope' is neither"),
    ]:
        assert main([*argv, *data]) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and words in lines[0], lines
