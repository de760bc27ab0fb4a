"""POST /api/imports: an imported embedding becomes a run every endpoint serves; refusals leave nothing;
GET /api/runs/{id}/export gives it back (Parquet, projector .zip) with the same arrays."""
from __future__ import annotations

import base64
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sklearn.datasets import load_digits

from app.main import create_app
from ml.interchange import read_embeddings

N = 300
DIGITS = load_digits()
EMBEDDING = DIGITS.data[:N].astype(np.float32)
LABELS = DIGITS.target[:N]
PIXELS = (DIGITS.images[:N] * 16).clip(0, 255).astype(np.uint8)


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def parquet_bytes(**columns: Any) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.table(columns), buffer)
    return buffer.getvalue()


def digits_parquet() -> bytes:
    images = pa.StructArray.from_arrays([pa.array([_png(p) for p in PIXELS], pa.binary()),
                                         pa.array([f"{i}.png" for i in range(N)])], names=["bytes", "path"])
    return parquet_bytes(embedding=pa.array(EMBEDDING.tolist()), label=[f"digit {v}" for v in LABELS], image=images,
                         x=EMBEDDING[:, 10], y=EMBEDDING[:, 20], ink=PIXELS.reshape(N, -1).mean(axis=1).astype(float),
                         parity=["even" if v % 2 == 0 else "odd" for v in LABELS], file=[f"img-{i:04d}.png" for i in range(N)])


def post(client: TestClient, file_name: str, data: bytes, **options: Any):
    return client.post("/api/imports", files={"file": (file_name, data, "application/octet-stream")},
                       data={"options": json.dumps(options)})


def decode(text: str, dtype: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype=dtype)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, settings_factory):
    settings = settings_factory(tmp_path_factory.mktemp("imports") / "data", upload_max_bytes=600_000)
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture(scope="module")
def imported(api: TestClient, job_waiter, waiter) -> dict[str, Any]:
    answer = post(api, "digits.parquet", digits_parquet(), name="digits features")
    assert answer.status_code == 202, answer.text
    job = job_waiter(api, answer.json()["job_id"], timeout=120)
    assert job["status"] == "succeeded", job["error"]
    run_id = answer.json()["run_id"]
    for row in api.get(f"/api/runs/{run_id}").json()["projections"] + api.get(f"/api/runs/{run_id}").json()["clusterings"]:
        if row["job_id"]:
            assert job_waiter(api, row["job_id"], timeout=120)["status"] == "succeeded"
    # The map is there as soon as the import job ends; its trustworthiness follows from the knn job.
    return waiter(lambda: (run := api.get(f"/api/runs/{run_id}").json())["projections"][0]["metrics"]
                      .get("trustworthiness") is not None and run, 120, "the imported map's trustworthiness")


def test_an_import_is_a_run_with_its_map_scores_and_images(api: TestClient, imported: dict[str, Any]) -> None:
    run_id = imported["id"]
    assert imported["method"] == "imported" and imported["status"] == "succeeded"
    assert imported["config"]["name"] == "digits features" and imported["embedding_shape"] == [N, 64]
    assert 0.8 <= imported["metrics"]["knn_accuracy"] <= 1.0 and imported["metrics"]["scored_points"] == N
    assert 0.8 <= imported["metrics"]["knn_accuracy_cosine"] <= 1.0
    # Its own x/y are its map: no default projection is queued to replace it.
    assert [row["method"] for row in imported["projections"]] == ["imported"]
    assert [row["method"] for row in imported["clusterings"]] == ["kmeans"]
    shown = imported["projections"][0]
    assert shown["status"] == "succeeded" and 0.5 < shown["metrics"]["trustworthiness"] <= 1.0

    points = api.get(f"/api/runs/{run_id}/points", params={"projection": shown["id"]}).json()
    assert points["n"] == N and np.allclose(decode(points["x"], "<f4"), EMBEDDING[:, 10])
    assert points["class_names"] == [f"digit {v}" for v in range(10)]
    assert np.array_equal(decode(points["label"], "<i2"), LABELS)
    assert "neighbourhood_preservation" in points["values"]

    neighbours = api.get(f"/api/runs/{run_id}/neighbors/0", params={"k": 3}).json()["neighbors"]
    distances = np.linalg.norm(EMBEDDING - EMBEDDING[0], axis=1)
    distances[0] = np.inf
    assert [row["index"] for row in neighbours] == list(np.argsort(distances, kind="stable")[:3])

    dataset = imported["dataset"]
    assert dataset == f"import-{run_id}"
    detail = api.get(f"/api/datasets/{dataset}").json()
    assert detail["n"] == N and detail["image_shape"] == [1, 8, 8]
    thumbnail = Image.open(io.BytesIO(api.get(f"/api/datasets/{dataset}/images/7", params={"size": 8}).content))
    assert np.array_equal(np.asarray(thumbnail), PIXELS[7])
    assert api.get(f"/api/datasets/{dataset}/atlas").status_code == 200
    listed = {row["name"]: row for row in api.get("/api/datasets").json()}
    assert listed[dataset]["description"] == f"images of the imported embedding {run_id}"


def test_an_import_takes_new_clusterings_and_compares_them(api: TestClient, imported: dict[str, Any], job_waiter) -> None:
    run_id = imported["id"]
    answer = api.post(f"/api/runs/{run_id}/clusterings",
                      json={"method": "kmeans", "params": {"n_clusters": 4}, "on": imported["projections"][0]["id"]})
    assert answer.status_code == 202, answer.text
    job = job_waiter(api, answer.json()["job_id"])
    assert job["status"] == "succeeded", job["error"]
    first = imported["clusterings"][0]["id"]
    comparison = api.get(f"/api/runs/{run_id}/compare", params={"a": first, "b": job["target_id"]}).json()
    assert len(comparison["contingency"]) == 10 and len(comparison["contingency"][0]) == 4
    assert comparison["vs_labels"] is not None


def test_an_import_takes_a_scan_clustering_in_a_worker(api: TestClient, imported: dict[str, Any], job_waiter) -> None:
    run_id = imported["id"]
    answer = api.post(f"/api/runs/{run_id}/clusterings", json={"method": "scan", "params": {"epochs": 10}, "on": "embedding"})
    assert answer.status_code == 202, answer.text
    job = job_waiter(api, answer.json()["job_id"])
    assert job["status"] == "succeeded", job["error"]
    clustering = next(row for row in api.get(f"/api/runs/{run_id}").json()["clusterings"] if row["id"] == job["target_id"])
    assert clustering["method"] == "scan"
    assert clustering["params"] == {"n_clusters": None, "n_neighbors": 20, "entropy_weight": 5.0, "epochs": 10, "heads": 10}
    assert clustering["metrics"]["n_clusters"] == 10 and clustering["metrics"]["accuracy"] > 0.7  # 300 digits' pixels


def test_export_parquet_and_projector_give_the_same_arrays(api: TestClient, imported: dict[str, Any], job_waiter) -> None:
    run_id = imported["id"]
    answer = api.get(f"/api/runs/{run_id}/export", params={"format": "parquet"})
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/vnd.apache.parquet"
    exported = pq.read_table(io.BytesIO(answer.content))
    assert {f"clustering.{row['id']}" for row in imported["clusterings"]} <= set(exported.column_names)
    assert {"embedding", "label", "x", "y", "ink", "parity", "file", "image"} <= set(exported.column_names)

    again = post(api, "again.parquet", answer.content)
    assert again.status_code == 202, again.text
    assert job_waiter(api, again.json()["job_id"])["status"] == "succeeded"
    back = api.get(f"/api/runs/{again.json()['run_id']}/points").json()
    assert np.array_equal(decode(back["label"], "<i2"), LABELS) and back["class_names"][3] == "digit 3"
    assert np.allclose(decode(back["x"], "<f4"), EMBEDDING[:, 10])

    archive = api.get(f"/api/runs/{run_id}/export", params={"format": "projector"})
    assert archive.status_code == 200
    names = set(zipfile.ZipFile(io.BytesIO(archive.content)).namelist())
    assert {"tensors.tsv", "metadata.tsv", "sprite.png", "projector_config.pbtxt"} <= names
    third = post(api, "export.zip", archive.content)
    assert third.status_code == 202, third.text
    assert job_waiter(api, third.json()["job_id"])["status"] == "succeeded"
    detail = api.get(f"/api/runs/{third.json()['run_id']}").json()
    assert detail["config"]["format"] == "projector" and detail["config"]["has_images"]
    folder = Path(api.app.state.registry.data_dir) / "runs" / third.json()["run_id"]
    assert np.array_equal(np.load(folder / "embeddings.npy"), EMBEDDING)


def test_dataset_option_takes_the_images_and_labels_of_a_dataset(api: TestClient, job_waiter) -> None:
    features = load_digits().data.astype(np.float32)[:, ::-1].copy()
    buffer = io.BytesIO()
    np.save(buffer, features)
    answer = post(api, "features.npy", buffer.getvalue(), dataset="digits")
    assert answer.status_code == 202, answer.text
    assert job_waiter(api, answer.json()["job_id"])["status"] == "succeeded"
    detail = api.get(f"/api/runs/{answer.json()['run_id']}").json()
    assert detail["dataset"] == "digits" and detail["config"]["has_labels"] and detail["config"]["has_images"]
    # Without x/y: the quick PCA map, then the default projection (PCA in the tests' settings: once).
    assert [row["method"] for row in detail["projections"]] == ["pca"]


def _runs_and_files(api: TestClient) -> tuple[int, int, int]:
    data_dir = Path(api.app.state.registry.data_dir)
    return (len(api.get("/api/runs").json()), len(list((data_dir / "runs").glob("*"))),
            len(api.get("/api/datasets").json()))


@pytest.mark.parametrize("name, data, options, status, message", [
    ("ragged.csv", b"a,b\n1,2\n3\n", {}, 422, "ragged row"),
    ("typo.csv", b"a,b\n1,2\n3,x\n", {}, 422, "'x' is not a number"),
    ("nan.tsv", b"1\t2\n3\tnan\n", {}, 422, "NaN or infinity"),
    ("empty.csv", b"", {}, 422, "empty"),
    ("nodims.csv", b"name\nx\ny\n", {}, 422, "d = 0"),
    ("vec.parquet", parquet_bytes(features=[[1.0]]), {}, 422, "no embedding column"),
    ("ragged.parquet", parquet_bytes(embedding=[[1.0, 2.0], [1.0]]), {}, 422, "unequal length"),
    ("fake.parquet", b"a,b\n1,2\n", {}, 422, "not a readable Parquet file"),
    ("e.csv", b"a\n1\n2\n", {"dataset": "digits"}, 422, "has 1797 images, the embedding has 2 points"),
    ("e.csv", b"a\n1\n2\n", {"dataset": "no-such"}, 404, "no dataset named 'no-such'"),
    ("e.csv", b"a\n1\n2\n", {"labels_column": "kind"}, 422, "no column 'kind'"),
    ("e.csv", b"a\n1\n2\n", {"format": "xml"}, 422, "format must be"),
    ("e.csv", b"a\n1\n2\n", {"colour": "red"}, 422, "unknown field 'colour'"),
    ("big.csv", b"1\n" * 400_000, {}, 413, "larger than the limit"),
    ("bad.zip", b"PK\x03\x04 broken", {}, 422, "not a .zip"),
])
def test_refusals_name_the_problem_and_leave_nothing(api: TestClient, name: str, data: bytes, options: dict,
                                                     status: int, message: str) -> None:
    before = _runs_and_files(api)
    answer = post(api, name, data, **options)
    assert answer.status_code == status and message in answer.json()["detail"], answer.text
    assert _runs_and_files(api) == before


def test_projector_zip_refusals(api: TestClient, tmp_path: Path) -> None:
    def zipped(entries: dict[str, bytes]) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for entry, data in entries.items():
                archive.writestr(entry, data)
        return buffer.getvalue()

    config = b'embeddings { tensor_path: "../outside.tsv" }'
    before = _runs_and_files(api)
    answer = post(api, "p.zip", zipped({"export/projector_config.pbtxt": config, "outside.tsv": b"1\t2\n"}))
    assert answer.status_code == 422 and "leads outside the projector folder" in answer.json()["detail"]
    answer = post(api, "p.zip", zipped({"../evil/projector_config.pbtxt": b""}))
    assert answer.status_code == 422 and "escapes the archive" in answer.json()["detail"]
    answer = post(api, "p.zip", zipped({"tensors.tsv": b"1\t2\n"}))
    assert answer.status_code == 422 and "no projector_config.pbtxt" in answer.json()["detail"]
    assert _runs_and_files(api) == before


def test_metadata_colours_and_search_finds_points(api: TestClient, imported: dict[str, Any]) -> None:
    run_id = imported["id"]
    points = api.get(f"/api/runs/{run_id}/points").json()
    assert np.allclose(decode(points["values"]["ink"], "<f4"), PIXELS.reshape(N, -1).mean(axis=1), atol=1e-4)
    parity = points["categories"]["parity"]
    assert parity["names"] == ["even", "odd"]
    assert np.array_equal(decode(parity["codes"], "<i4"), LABELS % 2)
    assert "file" in points["categories"]  # 300 distinct values: few enough to send
    found = api.get(f"/api/runs/{run_id}/search", params={"q": "IMG-01"}).json()
    assert found["total"] == 100 and found["indices"] == list(range(100, 200))
    found = api.get(f"/api/runs/{run_id}/search", params={"q": "digit 7", "limit": 5}).json()
    assert found["total"] == int((LABELS == 7).sum()) and found["indices"] == list(np.flatnonzero(LABELS == 7)[:5])
    assert api.get(f"/api/runs/{run_id}/search", params={"q": ""}).status_code == 422


def test_deleting_an_import_removes_its_images(api: TestClient, job_waiter, waiter) -> None:
    answer = post(api, "small.parquet", digits_parquet())
    assert answer.status_code == 202
    assert job_waiter(api, answer.json()["job_id"])["status"] == "succeeded"
    run = api.get(f"/api/runs/{answer.json()['run_id']}").json()
    folder = Path(api.app.state.registry.data_dir) / "datasets" / run["dataset"]
    assert (folder / "images.npy").is_file()
    # Its queued jobs (kNN graph, k-means) must end before the run can be deleted (409 until then).
    waiter(lambda: api.delete(f"/api/runs/{run['id']}").status_code == 204, 120, "the run to be deletable")
    assert not folder.exists() and api.get(f"/api/datasets/{run['dataset']}").status_code == 404


def test_random_bytes_are_refused_never_a_server_error(api: TestClient) -> None:
    rng = np.random.default_rng(3)
    for name in ("x.csv", "x.tsv", "x.parquet", "x.npy", "x.bin", "x.zip"):
        for size in (1, 7, 300):
            data = rng.integers(0, 256, size=size, dtype=np.uint8).tobytes()
            for prefix in (b"", b"PAR1", b"\x93NUMPY", b"PK\x03\x04"):
                answer = post(api, name, prefix + data)
                assert 400 <= answer.status_code < 500, (name, prefix, answer.text)
