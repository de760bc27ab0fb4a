"""Runs, projections, clusterings and the map endpoints on a finished run (trained once per session)."""
from __future__ import annotations

import base64
import shutil

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.registry import Registry


def decode(text: str, dtype: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype=np.dtype(dtype))


@pytest.fixture(scope="module")
def api(tiny_run, settings_factory):
    with TestClient(create_app(settings_factory(tiny_run.data_dir))) as client:
        yield client


def test_runs_list_and_detail(api: TestClient, tiny_run) -> None:
    listed = api.get("/api/runs").json()
    assert tiny_run.run_id in [run["id"] for run in listed]
    run = api.get(f"/api/runs/{tiny_run.run_id}").json()
    assert (run["dataset"], run["method"], run["status"]) == ("digits", "ae", "succeeded")
    assert run["config"]["epochs"] == 1 and run["embedding_shape"] == [1797, 8]
    assert 0 < run["metrics"]["knn_accuracy"] <= 1 and run["metrics"]["final_loss"] > 0
    assert [p["id"] for p in run["projections"]] == [tiny_run.projection_id]
    assert run["projections"][0]["status"] == "succeeded" and run["projections"][0]["metrics"]["trustworthiness"] > 0.5
    assert [c["id"] for c in run["clusterings"]] == [tiny_run.clustering_id]
    assert run["clusterings"][0]["metrics"]["n_clusters"] == 10 and run["clusterings"][0]["on"] == "embedding"
    assert len(run["history"]) == 1 and run["history"][0]["epoch"] == 1
    assert run["job"]["id"] == tiny_run.job_id and run["job"]["status"] == "succeeded"
    assert run["has_reconstructions"] is True
    # What training resolved from the request: the autoencoder trains in float32 on the CPU here.
    assert run["trained_with"]["device"] == "cpu" and run["trained_with"]["precision"] == "float32"
    assert set(run["trained_with"]) == {"encoder", "device", "precision", "torch_threads"}


def test_points_are_base64_typed_arrays(api: TestClient, tiny_run) -> None:
    body = api.get(f"/api/runs/{tiny_run.run_id}/points").json()
    assert body["n"] == 1797 and body["dataset"] == "digits"
    assert body["projection"]["id"] == tiny_run.projection_id and body["clustering"]["id"] == tiny_run.clustering_id
    coords = np.load(tiny_run.run_dir / "projections" / tiny_run.projection_id / "coords.npy")
    x, y = decode(body["x"], "<f4"), decode(body["y"], "<f4")
    assert np.array_equal(x, coords[:, 0]) and np.array_equal(y, coords[:, 1])
    labels = decode(body["label"], "<i2")
    assert np.array_equal(labels, np.load(tiny_run.run_dir / "labels.npy"))
    clusters = decode(body["cluster"], "<i4")
    assert clusters.shape == (1797,) and set(np.unique(clusters)) == set(range(10))
    assert body["class_names"] == [str(d) for d in range(10)]
    agreement = decode(body["values"]["knn_agreement"], "<f4")
    assert agreement.shape == (1797,) and agreement.min() >= 0 and agreement.max() <= 1
    # the first point's agreement, recomputed from the embedding
    embedding = np.load(tiny_run.run_dir / "embeddings.npy")
    distances = np.linalg.norm(embedding - embedding[0], axis=1)
    distances[0] = np.inf
    nearest = np.argsort(distances, kind="stable")[:10]
    assert agreement[0] == pytest.approx(np.mean(labels[nearest] == labels[0]))


def test_points_are_gzipped_for_clients_that_accept_it(api: TestClient, tiny_run) -> None:
    url = f"/api/runs/{tiny_run.run_id}/points"
    plain = api.get(url, headers={"Accept-Encoding": "identity"})
    zipped = api.get(url, headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in plain.headers and zipped.headers["content-encoding"] == "gzip"
    assert int(zipped.headers["content-length"]) < len(plain.content) / 2
    assert zipped.json() == plain.json()


def test_points_refusals(api: TestClient, tiny_run) -> None:
    missing = api.get(f"/api/runs/{tiny_run.run_id}/points?projection=pnope")
    assert missing.status_code == 404 and "no projection 'pnope'" in missing.json()["detail"]
    assert api.get(f"/api/runs/{tiny_run.run_id}/points?clustering=cnope").status_code == 404


def test_neighbors_match_the_embedding(api: TestClient, tiny_run) -> None:
    body = api.get(f"/api/runs/{tiny_run.run_id}/neighbors/7?k=5").json()
    embedding = np.load(tiny_run.run_dir / "embeddings.npy")
    distances = np.linalg.norm(embedding - embedding[7], axis=1)
    distances[7] = np.inf
    expected = np.argsort(distances, kind="stable")[:5]
    assert body["index"] == 7
    assert [n["index"] for n in body["neighbors"]] == expected.tolist()
    assert body["neighbors"][0]["distance"] == pytest.approx(distances[expected[0]], rel=1e-4)
    labels = np.load(tiny_run.run_dir / "labels.npy")
    assert [n["label"] for n in body["neighbors"]] == labels[expected].tolist()
    assert all(n["cluster"] is not None for n in body["neighbors"])
    assert api.get(f"/api/runs/{tiny_run.run_id}/neighbors/1797").status_code == 404
    assert api.get(f"/api/runs/{tiny_run.run_id}/neighbors/1?k=0").status_code == 422


def test_compare_a_clustering_with_itself_and_bad_pairs(api: TestClient, tiny_run) -> None:
    run, c = tiny_run.run_id, tiny_run.clustering_id
    body = api.get(f"/api/runs/{run}/compare?a={c}&b={c}").json()
    assert body["ari"] == pytest.approx(1.0) and body["nmi"] == pytest.approx(1.0) and body["accuracy"] == 1.0
    assert body["a_ids"] == list(range(10)) and len(body["contingency"]) == 10
    assert sum(map(sum, body["contingency"])) == 1797
    assert body["vs_labels"]["a"]["ari"] == pytest.approx(body["a"]["metrics"]["ari"])
    assert api.get(f"/api/runs/{run}/compare?a={c}&b=cnope").status_code == 404
    assert api.get(f"/api/runs/{run}/compare?a=cnope&b={c}").status_code == 404
    assert api.get(f"/api/runs/{run}/compare?a={c}").status_code == 422


def test_reconstructions_are_png_data_urls(api: TestClient, tiny_run) -> None:
    body = api.get(f"/api/runs/{tiny_run.run_id}/reconstructions?size=16").json()
    assert len(body["originals"]) == len(body["reconstructions"]) == len(body["indices"]) > 0
    assert body["originals"][0].startswith("data:image/png;base64,")
    from PIL import Image
    import io

    image = Image.open(io.BytesIO(base64.b64decode(body["reconstructions"][0].split(",", 1)[1])))
    assert image.size == (16, 16)


@pytest.mark.parametrize(("path", "body", "words"), [
    ("projections", {"method": "mds"}, "unknown projection method 'mds'"),
    ("projections", {"method": "tsne", "params": {"perplexity": -3}}, "perplexity"),
    ("clusterings", {"method": "kmeans", "params": {"n_clusters": 1}}, "n_clusters must be >= 2"),
    ("clusterings", {"method": "kmeans", "on": "pnope"}, "on: 'pnope'"),
    ("clusterings", {"method": "magic"}, "unknown clustering method 'magic'"),
    ("clusterings", {"method": "gmm", "params": {"covariance_type": "round"}}, "covariance_type must be one of full, tied, diag, spherical"),
    ("clusterings", {"method": "scan", "params": {"heads": 0}}, "heads must be >= 1"),
])
def test_bad_analysis_requests_get_422(api: TestClient, tiny_run, path: str, body: dict, words: str) -> None:
    response = api.post(f"/api/runs/{tiny_run.run_id}/{path}", json=body)
    assert response.status_code == 422
    assert words in str(response.json()["detail"])


def test_analyses_of_unknown_run_are_404(api: TestClient) -> None:
    assert api.post("/api/runs/rnope/projections", json={"method": "pca"}).status_code == 404
    assert api.post("/api/runs/rnope/clusterings", json={"method": "kmeans"}).status_code == 404


def test_delete_refuses_while_a_job_is_queued_then_removes_everything(api: TestClient, tiny_run, run_trainer,
                                                                     tmp_path) -> None:
    registry = Registry(tiny_run.data_dir / "latentmap.sqlite3")
    spare = run_trainer(tmp_path / "spare", analyses=False)
    # move the spare run into the shared data directory's registry and folder
    shutil.copytree(spare.run_dir, tiny_run.data_dir / "runs" / spare.run_id)
    registry.create_run(spare.run_id, "digits", "ae", {"epochs": 1, "seed": 0}, tiny_run.data_dir / "runs" / spare.run_id)
    registry.update_run(spare.run_id, status="succeeded")
    job = registry.create_job("project", spare.run_id, {"method": "pca", "params": {}}, status="running", worker_pid=1)
    refused = api.delete(f"/api/runs/{spare.run_id}")
    assert refused.status_code == 409 and "cancel it first" in refused.json()["detail"]
    registry.finish_job(job.id, "failed", "test")
    assert api.delete(f"/api/runs/{spare.run_id}").status_code == 204
    assert not (tiny_run.data_dir / "runs" / spare.run_id).exists()
    assert api.get(f"/api/runs/{spare.run_id}").status_code == 404
    assert api.get(f"/api/jobs/{job.id}").status_code == 404


def test_analysis_of_a_failed_run_is_409(api: TestClient, tiny_run) -> None:
    registry = Registry(tiny_run.data_dir / "latentmap.sqlite3")
    registry.create_run("rfailed", "digits", "ae", {"seed": 0}, tiny_run.data_dir / "runs" / "rfailed")
    registry.update_run("rfailed", status="failed")
    response = api.post("/api/runs/rfailed/projections", json={"method": "pca"})
    assert response.status_code == 409 and "no embedding" in response.json()["detail"]
    assert api.get("/api/runs/rfailed/points").status_code == 409
