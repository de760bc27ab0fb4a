"""The insight endpoints on a finished digits AE run: neighbourhood preservation in the points payload,
cluster stability, the epoch timeline, and the decoder."""
from __future__ import annotations

import base64

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.model_worker import MODEL_WORKER
from app.registry import Registry


def decode(text: str, dtype: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype=np.dtype(dtype))


@pytest.fixture(scope="module")
def run(tmp_path_factory, run_trainer):
    """A digits AE run of this module's own (the tests add analyses to it)."""
    return run_trainer(tmp_path_factory.mktemp("insights") / "data", epochs=2)


@pytest.fixture(scope="module")
def api(run, settings_factory):
    with TestClient(create_app(settings_factory(run.data_dir))) as client:
        yield client
    MODEL_WORKER.close()  # the decoder's process, started by the decode tests


def test_points_carry_neighbourhood_preservation(api: TestClient, run) -> None:
    body = api.get(f"/api/runs/{run.run_id}/points?projection={run.projection_id}").json()
    values = decode(body["values"]["neighbourhood_preservation"], "<f4")
    stored = np.load(run.run_dir / "projections" / run.projection_id / "preservation.npy")
    assert values.shape == (1797,) and np.array_equal(values, stored)
    assert 0.0 <= values.min() and values.max() <= 1.0
    mean = body["projection"]["metrics"]["neighbourhood_preservation"]
    assert mean == pytest.approx(float(values.mean()), abs=1e-6)
    detail = api.get(f"/api/runs/{run.run_id}").json()
    assert detail["projections"][0]["metrics"]["neighbourhood_preservation"] == pytest.approx(mean)


def test_a_projection_made_before_preservation_gets_it_on_first_use(api: TestClient, run) -> None:
    registry = Registry(run.data_dir / "latentmap.sqlite3")
    projection = registry.get_projection(run.projection_id)
    stored_path = run.run_dir / "projections" / run.projection_id / "preservation.npy"
    stored = np.load(stored_path)
    stored_path.unlink()
    older = {key: value for key, value in projection.metrics.items() if key != "neighbourhood_preservation"}
    registry.update_analysis("projections", projection.id, "succeeded", older)
    body = api.get(f"/api/runs/{run.run_id}/points?projection={run.projection_id}").json()
    assert np.array_equal(decode(body["values"]["neighbourhood_preservation"], "<f4"), stored)
    assert stored_path.exists()
    again = registry.get_projection(run.projection_id).metrics
    assert again["neighbourhood_preservation"] == pytest.approx(float(stored.mean()), abs=1e-6)
    assert again["trustworthiness"] == projection.metrics["trustworthiness"]


def test_stability_job_fills_the_clustering_and_the_points(api: TestClient, run, job_waiter) -> None:
    url = f"/api/runs/{run.run_id}/clusterings/{run.clustering_id}/stability"
    answer = api.post(url, json={"repeats": 3})
    assert answer.status_code == 202 and answer.json()["clustering_id"] == run.clustering_id
    job = job_waiter(api, answer.json()["job_id"])
    assert job["status"] == "succeeded" and job["kind"] == "stability", job["error"]
    clustering = next(c for c in api.get(f"/api/runs/{run.run_id}").json()["clusterings"] if c["id"] == run.clustering_id)
    assert clustering["status"] == "succeeded" and clustering["metrics"]["n_clusters"] == 10
    stability = clustering["stability"]
    assert stability["repeats"] == 3 and 0.0 < stability["mean_ari"] <= 1.0
    assert set(stability["per_cluster"]) == {str(label) for label in range(10)}
    body = api.get(f"/api/runs/{run.run_id}/points?clustering={run.clustering_id}").json()
    per_point = decode(body["values"]["stability"], "<f4")
    clusters = decode(body["cluster"], "<i4")
    assert per_point.shape == (1797,) and 0.0 <= per_point.min() and per_point.max() <= 1.0
    assert stability["per_cluster"]["0"] == pytest.approx(float(per_point[clusters == 0].mean()), abs=1e-5)
    assert body["clustering"]["stability"] == stability


@pytest.mark.parametrize("body", [{"repeats": 1}, {"repeats": 101}, {"repeats": "many"}, {"repeats": 5, "seed": 1}])
def test_stability_refuses_bad_repeats(api: TestClient, run, body: dict) -> None:
    answer = api.post(f"/api/runs/{run.run_id}/clusterings/{run.clustering_id}/stability", json=body)
    assert answer.status_code == 422
    assert any(error["loc"][-1] in ("repeats", "seed") for error in answer.json()["detail"])


def test_stability_of_unknown_things_is_404(api: TestClient, run) -> None:
    assert api.post(f"/api/runs/rnope/clusterings/{run.clustering_id}/stability", json={}).status_code == 404
    answer = api.post(f"/api/runs/{run.run_id}/clusterings/cnope/stability", json={})
    assert answer.status_code == 404 and "cnope" in answer.json()["detail"]


def test_timeline_is_404_before_it_is_asked_for_then_frames_follow(api: TestClient, run, job_waiter) -> None:
    url = f"/api/runs/{run.run_id}/timeline"
    missing = api.get(url)
    assert missing.status_code == 404 and "POST" in missing.json()["detail"]
    answer = api.post(url, json={"method": "tsne"})
    assert answer.status_code == 202 and answer.json()["run_id"] == run.run_id
    job = job_waiter(api, answer.json()["job_id"], timeout=180)
    assert job["status"] == "succeeded" and job["kind"] == "timeline", job["error"]
    body = api.get(url).json()
    assert body["status"] == "succeeded" and body["method"] == "tsne" and body["job_id"] == job["id"]
    assert [frame["epoch"] for frame in body["frames"]] == [1, 2]  # 2 epochs, default snapshots 8: every epoch
    last = body["frames"][-1]
    x, y = decode(last["x"], "<f4"), decode(last["y"], "<f4")
    assert x.shape == y.shape == (1797,) and np.isfinite(x).all() and x.std() > 0
    final_accuracy = api.get(f"/api/runs/{run.run_id}").json()["metrics"]["knn_accuracy"]
    assert last["knn_accuracy"] == pytest.approx(final_accuracy)


@pytest.mark.parametrize("body", [{"method": "pca"}, {}, {"method": "tsne", "perplexity": 5}])
def test_timeline_refuses_a_bad_method(api: TestClient, run, body: dict) -> None:
    answer = api.post(f"/api/runs/{run.run_id}/timeline", json=body)
    assert answer.status_code == 422


def test_timeline_of_a_run_without_snapshots_is_409_saying_how_to_get_them(api: TestClient, run) -> None:
    registry = Registry(run.data_dir / "latentmap.sqlite3")
    registry.create_run("rnosnaps", "digits", "ae", {"seed": 0, "snapshots": 0}, run.data_dir / "runs" / "rnosnaps")
    registry.update_run("rnosnaps", status="succeeded")
    answer = api.post("/api/runs/rnosnaps/timeline", json={"method": "umap"})
    assert answer.status_code == 409 and "snapshots >= 2" in answer.json()["detail"]
    assert api.get("/api/runs/rnosnaps/timeline").status_code == 404
    assert api.post("/api/runs/rnope/timeline", json={"method": "tsne"}).status_code == 404


def _png(response) -> np.ndarray:  # noqa: ANN001
    from PIL import Image
    import io

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    return np.asarray(Image.open(io.BytesIO(response.content)))


def _reconstruction(run_dir, index: int) -> np.ndarray:  # noqa: ANN001
    """Point `index`'s reconstruction by the run's autoencoder (uint8 H × W), computed here with torch."""
    import torch

    from ml.datasets import load_dataset
    from ml.decoder import load_with_decoder

    image = load_dataset("digits").images[index : index + 1]
    with torch.inference_mode():
        batch = torch.from_numpy(image).permute(0, 3, 1, 2).float() / 255
        rebuilt = load_with_decoder(run_dir).reconstruct(batch)
    return (rebuilt.clamp(0, 1) * 255).round().to(torch.uint8)[0, 0].numpy()


def test_decode_at_a_points_own_position_draws_its_reconstruction(api: TestClient, run) -> None:
    coords = np.load(run.run_dir / "projections" / run.projection_id / "coords.npy")
    index = 17
    response = api.get(f"/api/runs/{run.run_id}/decode", params={
        "projection": run.projection_id, "x": float(coords[index, 0]), "y": float(coords[index, 1]), "size": 8})
    drawn = _png(response)
    assert response.headers["x-latentmap-estimate"] == "idw k=8 power=2"
    assert drawn.shape == (8, 8)
    assert np.abs(drawn.astype(int) - _reconstruction(run.run_dir, index).astype(int)).max() <= 1
    # Between points the estimate blends the nearest codes: still a drawing of the digits' size.
    middle = coords[:, :2].mean(axis=0)
    between = _png(api.get(f"/api/runs/{run.run_id}/decode", params={
        "projection": run.projection_id, "x": float(middle[0]), "y": float(middle[1])}))
    assert between.shape == (96, 96)


def test_interpolate_is_a_strip_from_a_to_b(api: TestClient, run) -> None:
    strip = _png(api.get(f"/api/runs/{run.run_id}/interpolate", params={"a": 3, "b": 40, "steps": 5, "size": 8}))
    assert strip.shape == (8, 40)
    for position, index in ((0, 3), (4, 40)):
        tile = strip[:, position * 8 : (position + 1) * 8]
        assert np.abs(tile.astype(int) - _reconstruction(run.run_dir, index).astype(int)).max() <= 1


def test_points_carry_reconstruction_errors_and_compute_them_for_older_runs(api: TestClient, run, waiter) -> None:
    url = f"/api/runs/{run.run_id}/points?projection={run.projection_id}"
    stored_path = run.run_dir / "reconstruction_errors.npy"
    errors = decode(api.get(url).json()["values"]["reconstruction_error"], "<f4")
    assert errors.shape == (1797,) and np.array_equal(errors, np.load(stored_path)) and errors.min() > 0
    stored_path.unlink()  # as for a run trained before training wrote them
    assert "reconstruction_error" not in api.get(url).json()["values"]  # asked for, in the model process

    waiter(stored_path.exists, 120, "the model process to write reconstruction_errors.npy")
    again = decode(api.get(url).json()["values"]["reconstruction_error"], "<f4")
    assert np.allclose(again, errors, rtol=1e-5)


@pytest.mark.parametrize(("path", "status", "words"), [
    ("decode?projection={p}&x=1e9&y=0", 422, "x=1000000000.0 is outside the map"),
    ("decode?projection={p}&x=0&y=nan", 422, "y=nan"),
    ("decode?projection=pnope&x=0&y=0", 404, "no projection 'pnope'"),
    ("decode?x=0&y=0", 422, "projection"),
    ("interpolate?a=0&b=1797", 404, "b: run"),
    ("interpolate?a=-1&b=3", 404, "a: run"),
    ("interpolate?a=0&b=3&steps=1", 422, "steps"),
    ("interpolate?a=0&b=3&steps=33", 422, "steps"),
])
def test_decoder_refusals(api: TestClient, run, path: str, status: int, words: str) -> None:
    response = api.get(f"/api/runs/{run.run_id}/" + path.format(p=run.projection_id))
    assert response.status_code == status
    assert words in str(response.json()["detail"])


def test_decoding_a_run_without_a_decoder_is_409(api: TestClient, run) -> None:
    registry = Registry(run.data_dir / "latentmap.sqlite3")
    registry.create_run("rsimclr", "digits", "simclr", {"seed": 0}, run.data_dir / "runs" / "rsimclr")
    registry.update_run("rsimclr", status="succeeded")
    for path in ("decode?projection=p&x=0&y=0", "interpolate?a=0&b=1"):
        response = api.get(f"/api/runs/rsimclr/{path}")
        assert response.status_code == 409 and "without a decoder" in response.json()["detail"]
    assert api.get("/api/runs/rnope/interpolate?a=0&b=1").status_code == 404
