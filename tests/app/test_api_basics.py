"""Health, methods, datasets (list, detail, thumbnails, atlas) and refusals of bad input."""
from __future__ import annotations

import io

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.main import create_app
from app.settings import Settings, get_settings


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, settings_factory):
    with TestClient(create_app(settings_factory(tmp_path_factory.mktemp("api") / "data"))) as client:
        yield client


def test_health_reports_the_worker(api: TestClient) -> None:
    body = api.get("/api/health").json()
    assert body["status"] == "ok" and body["backend"] == "local" and body["workers"] == 1


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("LATENTMAP_DATA_DIR", str(tmp_path / "x"))
    monkeypatch.setenv("LATENTMAP_WORKERS", "3")
    settings = Settings()
    assert (settings.data_dir, settings.workers, settings.port, settings.token) == (tmp_path / "x", 3, 8000, None)


def test_create_app_overrides_get_settings(tmp_path, settings_factory) -> None:
    settings = settings_factory(tmp_path)
    app = create_app(settings)
    assert app.dependency_overrides[get_settings]() is settings


def test_methods_describe_every_form(api: TestClient) -> None:
    body = api.get("/api/methods").json()
    assert set(body["training"]) == {"ae", "dae", "sparse-ae", "cae", "simclr", "moco", "byol"}
    assert {"pca", "tsne", "umap"} <= set(body["projections"])
    assert {"kmeans", "dbscan", "hdbscan", "agglomerative", "gmm", "scan"} <= set(body["clusterings"])
    kmeans = {spec["name"]: spec for spec in body["clusterings"]["kmeans"]["params"]}
    assert kmeans["n_clusters"]["type"] == "int" and kmeans["n_clusters"]["minimum"] == 2
    assert body["training"]["ae"]["defaults"]["epochs"] >= 1


def test_methods_give_defaults_for_a_dataset(api: TestClient) -> None:
    from ml.datasets import load_dataset
    from ml.methods import METHODS

    digits = load_dataset("digits")
    body = api.get("/api/methods", params={"dataset": "digits"}).json()
    for name, cls in METHODS.items():
        assert body["training"][name]["defaults"] == cls.defaults_for(digits.image_shape, len(digits))
    assert body["training"]["ae"]["defaults"] != api.get("/api/methods").json()["training"]["ae"]["defaults"]
    refused = api.get("/api/methods", params={"dataset": "no-such-set"})
    assert refused.status_code == 422 and "no-such-set" in refused.json()["detail"]


def test_openapi_documents_every_contract_endpoint(api: TestClient) -> None:
    paths = api.get("/openapi.json").json()["paths"]
    for path, method in [("/api/health", "get"), ("/api/datasets", "post"), ("/api/datasets/{name}/images/{index}", "get"),
                         ("/api/runs", "post"), ("/api/runs/{run_id}", "delete"), ("/api/jobs/{job_id}/events", "get"),
                         ("/api/jobs/{job_id}/cancel", "post"), ("/api/runs/{run_id}/projections", "post"),
                         ("/api/runs/{run_id}/clusterings", "post"), ("/api/runs/{run_id}/points", "get"),
                         ("/api/runs/{run_id}/neighbors/{index}", "get"), ("/api/runs/{run_id}/compare", "get")]:
        assert method in paths[path], (path, method)
    assert api.get("/docs").status_code == 200


def test_datasets_list_builtin_ones(api: TestClient) -> None:
    rows = {row["name"]: row for row in api.get("/api/datasets").json()}
    assert rows["digits"] == {"name": "digits", "source": "builtin", "available": True, "n": 1797,
                              "image_shape": [1, 8, 8], "has_labels": True, "description": rows["digits"]["description"]}
    assert {"fashion-mnist", "mnist", "cifar10"} <= set(rows)


def test_dataset_detail_and_atlas_layout(api: TestClient) -> None:
    body = api.get("/api/datasets/digits").json()
    assert body["n"] == 1797 and body["image_shape"] == [1, 8, 8] and body["class_names"][:2] == ["0", "1"]
    assert body["atlas"] == {"tile": 32, "columns": 64, "per_page": 4096, "pages": 1}


def test_thumbnail_is_a_png_of_the_image_with_caching_headers(api: TestClient) -> None:
    response = api.get("/api/datasets/digits/images/5?size=16")
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert "max-age" in response.headers["cache-control"]
    image = np.asarray(Image.open(io.BytesIO(response.content)))
    assert image.shape == (16, 16)
    from sklearn.datasets import load_digits

    expected = np.round(load_digits().images[5] * 255 / 16).astype(np.uint8)
    assert np.array_equal(image[::2, ::2], expected)  # nearest-neighbour upscale of the 8×8 original
    again = api.get("/api/datasets/digits/images/5?size=16", headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304
    assert api.get("/api/datasets/digits/images/6?size=16").headers["etag"] != response.headers["etag"]


def test_atlas_page_places_image_i_at_its_tile(api: TestClient) -> None:
    response = api.get("/api/datasets/digits/atlas?page=0&size=8")
    assert response.status_code == 200 and "etag" in response.headers
    sheet = np.asarray(Image.open(io.BytesIO(response.content)))
    assert sheet.shape == (29 * 8, 64 * 8)  # ceil(1797 / 64) rows
    from sklearn.datasets import load_digits

    i = 130  # row 2, column 2
    expected = np.round(load_digits().images[i] * 255 / 16).astype(np.uint8)
    assert np.array_equal(sheet[2 * 8:3 * 8, 2 * 8:3 * 8], expected)


@pytest.mark.parametrize(("path", "status", "words"), [
    ("/api/datasets/nope", 404, "no dataset named 'nope'"),
    ("/api/datasets/digits/images/1797", 404, "images 0..1796"),
    ("/api/datasets/digits/images/-1", 404, "images 0..1796"),
    ("/api/datasets/digits/images/1?size=4", 422, "size"),
    ("/api/datasets/digits/atlas?page=1", 404, "atlas pages 0..0"),
    ("/api/runs/nope", 404, "no run with id 'nope'"),
    ("/api/jobs/nope", 404, "no job with id 'nope'"),
    ("/api/runs/nope/points", 404, "no run"),
])
def test_unknown_things_are_refused_with_a_message(api: TestClient, path: str, status: int, words: str) -> None:
    response = api.get(path)
    assert response.status_code == status
    assert words in str(response.json()["detail"])


@pytest.mark.parametrize(("body", "words"), [
    ({"dataset": "nope", "method": "ae"}, "no dataset named 'nope'"),
    ({"dataset": "digits", "method": "vae"}, "unknown method 'vae'"),
    ({"dataset": "digits", "method": "ae", "epochs": 0}, "epochs"),
    ({"dataset": "digits", "method": "ae", "embedding_dim": 0}, "embedding_dim"),
    ({"dataset": "digits", "method": "ae", "lr": -1}, "lr"),
    ({"dataset": "digits", "method": "ae", "colour": "red"}, "colour"),
    ({"dataset": "digits", "method": "ae", "encoder": "vit"}, "encoder must be one of auto, mlp"),
    ({"dataset": "digits", "method": "ae", "snapshots": 33}, "'snapshots'"),
    ({"dataset": "digits", "method": "ae", "snapshots": -1}, "'snapshots'"),
    ({"dataset": "digits", "method": "dae", "method_params": {"noise_std": 5}}, "noise_std must be <= 2"),
    ({"dataset": "digits", "method": "ae", "method_params": {"bogus": 1}}, "unknown parameter bogus"),
])
def test_bad_training_requests_get_422_naming_the_field(api: TestClient, body: dict, words: str) -> None:
    response = api.post("/api/runs", json=body)
    assert response.status_code == 422
    assert words in str(response.json()["detail"])
    assert api.get("/api/runs").json() == []  # nothing was recorded


def test_every_openapi_link_names_a_field_its_answer_has(api: TestClient) -> None:
    """A link's `$response.body#/…` must point at a field of the answer's schema, and its target at a
    parameter the target operation takes (a typo would send fuzzers and clients nowhere)."""
    schema = api.get("/openapi.json").json()
    components = schema["components"]["schemas"]
    operations = {op["operationId"]: op for ops in schema["paths"].values() for op in ops.values()}
    checked = 0
    for ops in schema["paths"].values():
        for op in ops.values():
            for answer in op["responses"].values():
                body = answer.get("content", {}).get("application/json", {}).get("schema", {})
                for link in answer.get("links", {}).values():
                    target = operations[link["operationId"]]
                    taken = {parameter["name"] for parameter in target.get("parameters", [])}
                    for name, expression in link["parameters"].items():
                        assert name in taken, (link, name)
                        if not str(expression).startswith("$response.body#/"):
                            continue
                        node = body
                        for part in expression.split("#/", 1)[1].split("/"):
                            node = components[node["$ref"].rsplit("/", 1)[1]] if "$ref" in node else node
                            node = node["items"] if part.isdigit() else node["properties"][part]
                            node = node.get("anyOf", [node])[0]
                        checked += 1
    assert checked >= 40
