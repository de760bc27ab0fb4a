"""`latentmap import` and `latentmap export`: --json, one-line refusals (exit 2, no run), the round trip."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.datasets import load_digits

from app.cli import main
from ml.interchange import read_embeddings

DIGITS = load_digits()


def last_json(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


@pytest.fixture
def csv_file(tmp_path: Path) -> Path:
    rows = ["a,b,c,label,note"] + [f"{x[0]},{x[1]},{x[2]},{['cat', 'dog'][i % 2]},n{i}"
                                   for i, x in enumerate(DIGITS.data[:40, 20:23].tolist())]
    path = tmp_path / "points.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_import_json_then_export_both_formats_round_trip(tmp_path: Path, csv_file: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    data = ["--data-dir", str(tmp_path / "data")]
    assert main(["import", str(csv_file), "--name", "toy", "--json", *data]) == 0
    body = last_json(capsys.readouterr().out)
    assert {key: body[key] for key in ("n", "dim", "has_labels", "has_images")} == \
        {"n": 40, "dim": 3, "has_labels": True, "has_images": False}
    run_dir = tmp_path / "data" / "runs" / body["run_id"]
    assert np.array_equal(np.load(run_dir / "embeddings.npy"), DIGITS.data[:40, 20:23].astype(np.float32))
    assert json.loads((run_dir / "config.json").read_text())["name"] == "toy"

    assert main(["export", body["run_id"], "--format", "parquet", str(tmp_path / "out.parquet"), *data]) == 0
    assert main(["export", body["run_id"], "--format", "projector", str(tmp_path / "tb"), *data]) == 0
    capsys.readouterr()
    for exported in (tmp_path / "out.parquet", tmp_path / "tb"):
        back = read_embeddings(exported)
        assert np.array_equal(back.embedding, np.load(run_dir / "embeddings.npy"))
        assert [back.class_names[code] for code in back.labels] == ["cat", "dog"] * 20
        assert list(back.metadata["note"]) == [f"n{i}" for i in range(40)]
    assert pq.read_table(tmp_path / "out.parquet")["label"].type == pa.dictionary(pa.int32(), pa.string())

    assert main(["import", str(tmp_path / "out.parquet"), "--json", *data]) == 0
    again = last_json(capsys.readouterr().out)
    assert np.array_equal(np.load(tmp_path / "data" / "runs" / again["run_id"] / "labels.npy"),
                          np.load(run_dir / "labels.npy"))


@pytest.mark.parametrize("content, extra, message", [
    ("a,b\n1,2\n3\n", [], "ragged row"),
    ("a\n1\n2\n", ["--dataset", "digits"], "has 1797 images, the embedding has 2 points"),
    ("a\n1\n2\n", ["--labels-column", "kind"], "no column 'kind'"),
    ("a\n1\ninf\n", [], "NaN or infinity"),
])
def test_import_refusals_exit_2_with_one_line_and_no_run(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                        content: str, extra: list[str], message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    assert main(["import", str(path), "--data-dir", str(tmp_path / "data"), *extra]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and message in error and error.startswith("latentmap import: error:")
    assert not list(tmp_path.glob("data/runs/*"))
    assert main(["runs", "--json", "--data-dir", str(tmp_path / "data")]) == 0
    assert last_json(capsys.readouterr().out)["runs"] == []


def test_export_refusals(tmp_path: Path, csv_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = ["--data-dir", str(tmp_path / "data")]
    assert main(["export", "r-none", "--format", "parquet", str(tmp_path / "x.parquet"), *data]) == 2
    assert "no run with id 'r-none'" in capsys.readouterr().err
    assert main(["import", str(csv_file), "--json", *data]) == 0
    run_id = last_json(capsys.readouterr().out)["run_id"]
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    assert main(["export", run_id, "--format", "projector", str(tmp_path / "full"), *data]) == 2
    assert "not an empty folder" in capsys.readouterr().err
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"


def test_an_import_on_a_dataset_compares_with_a_trained_run_and_trained_runs_export(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], run_trainer, settings_factory) -> None:
    from fastapi.testclient import TestClient

    from app.main import create_app

    trained = run_trainer(tmp_path / "data")  # digits AE, 1 epoch, PCA map and k-means (k = 10)
    data = ["--data-dir", str(tmp_path / "data")]
    np.save(tmp_path / "pixels.npy", DIGITS.data.astype(np.float32))
    assert main(["import", str(tmp_path / "pixels.npy"), "--dataset", "digits", "--json", *data]) == 0
    imported = last_json(capsys.readouterr().out)
    assert imported["has_labels"] and imported["has_images"] and imported["dataset"] == "digits"
    assert main(["project", imported["run_id"], "--method", "pca", "--json", *data]) == 0
    assert main(["cluster", imported["run_id"], "--method", "kmeans", "--param", "n_clusters=10", "--json", *data]) == 0
    clustering = last_json(capsys.readouterr().out)["clustering_id"]
    with TestClient(create_app(settings_factory(tmp_path / "data"))) as client:
        answer = client.get(f"/api/runs/{imported['run_id']}/compare",
                            params={"a": clustering, "b": trained.clustering_id})
        assert answer.status_code == 200, answer.text
        comparison = answer.json()
        assert len(comparison["contingency"]) == 10 and 0.0 < comparison["ari"] <= 1.0
        assert comparison["vs_labels"]["a"]["ari"] > 0.3  # pixels cluster digits well enough

    # A trained run exports too: its embedding, the dataset's class names and images, its analyses.
    assert main(["export", trained.run_id, "--format", "parquet", str(tmp_path / "trained.parquet"), *data]) == 0
    back = read_embeddings(tmp_path / "trained.parquet")
    assert np.array_equal(back.embedding, np.load(trained.run_dir / "embeddings.npy"))
    assert back.class_names == [str(digit) for digit in range(10)] and np.array_equal(back.labels, DIGITS.target)
    assert back.images.shape == (1797, 8, 8, 1)
    assert f"clustering.{trained.clustering_id}" in back.metadata and np.allclose(
        back.coords, np.load(trained.run_dir / "projections" / trained.projection_id / "coords.npy")[:, :2])
