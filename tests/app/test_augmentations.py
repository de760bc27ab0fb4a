"""The augmentation inspector endpoint: its answer's shape and values, and its refusals."""
from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.inspector import INSPECTOR
from app.main import create_app
from app.routes.augmentations import MAX_PAIRS

INDEX = 11


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, run_trainer):
    data_dir = tmp_path_factory.mktemp("inspector") / "data"
    simclr = run_trainer(data_dir, method="simclr", epochs=3, analyses=False, embedding_dim=16)
    ae = run_trainer(data_dir, method="ae", epochs=1, analyses=False)
    return data_dir, simclr, ae


@pytest.fixture(scope="module")
def api(runs, settings_factory):
    with TestClient(create_app(settings_factory(runs[0]))) as client:
        yield client
    INSPECTOR.close()


def _inspected(client: TestClient, path: str, **params: object) -> dict:
    """The answer, asking again while the inspector says 503 with Retry-After (its first answer
    starts its process), as the page does."""
    for _ in range(120):
        answer = client.get(path, params=params)
        if answer.status_code != 503 or "Retry-After" not in answer.headers:
            assert answer.status_code == 200, answer.text
            return answer.json()
        time.sleep(float(answer.headers["Retry-After"]))
    raise AssertionError(f"{path} kept answering 503")


def _png(data_url: str) -> Image.Image:
    prefix = "data:image/png;base64,"
    assert data_url.startswith(prefix)
    return Image.open(io.BytesIO(base64.b64decode(data_url[len(prefix):])))


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_pairs_are_the_runs_own_views_with_their_similarities(api: TestClient, runs) -> None:
    from ml.augmentation_pairs import augmentation_pairs
    from ml.datasets import load_dataset

    _, simclr, _ = runs
    body = _inspected(api, f"/api/runs/{simclr.run_id}/points/{INDEX}/augmentations", pairs=4, size=32)
    assert (body["run_id"], body["index"], body["method"]) == (simclr.run_id, INDEX, "simclr")
    assert len(body["pairs"]) == 4
    views = [np.asarray(_png(pair[side])) for pair in body["pairs"] for side in ("a", "b")]
    assert all(view.shape == (32, 32) for view in views)  # grey 8×8 digits, upscaled
    original = np.asarray(_png(body["original"]))
    thumbnail = api.get(f"/api/datasets/digits/images/{INDEX}", params={"size": 32})
    assert np.array_equal(original, np.asarray(Image.open(io.BytesIO(thumbnail.content))))
    assert any(not np.array_equal(view, original) for view in views)  # the transform changed the image
    assert len({view.tobytes() for view in views}) > 1  # and differently each time

    # The same numbers as the run's transform and encoder give in this process (same seed).
    image = load_dataset("digits").images[INDEX]
    direct = augmentation_pairs(simclr.run_dir, image, INDEX, 4)
    assert [pair["similarity"] for pair in body["pairs"]] == pytest.approx(list(direct["pair_similarity"]), abs=1e-6)
    to_original = np.array([pair["similarity_to_original"] for pair in body["pairs"]])
    assert to_original.shape == (4, 2) and np.allclose(to_original, direct["original_similarity"], atol=1e-6)
    assert all(-1 <= pair["similarity"] <= 1 for pair in body["pairs"])
    assert body["mean_pair_similarity"] == pytest.approx(np.mean(direct["pair_similarity"]))

    # Nearest other image and the median: cosine on the stored embedding, the image itself left out.
    embedding = _unit(np.load(simclr.run_dir / "embeddings.npy").astype(np.float64))
    cosine = embedding @ embedding[INDEX]
    cosine[INDEX] = -np.inf
    assert body["nearest"]["index"] == int(np.argmax(cosine)) != INDEX
    assert body["nearest"]["similarity"] == pytest.approx(cosine.max())
    assert body["median_similarity"] == pytest.approx(np.median(np.delete(cosine, INDEX)))
    # The same point always shows the same pairs.
    again = _inspected(api, f"/api/runs/{simclr.run_id}/points/{INDEX}/augmentations", pairs=4, size=32)
    assert again == body


def test_an_answer_not_ready_in_time_is_a_503_to_ask_again_while_the_work_goes_on(api: TestClient, runs,
                                                                                   monkeypatch) -> None:
    _, simclr, _ = runs
    monkeypatch.setattr(INSPECTOR, "reply_seconds", 0.0)  # as when the process is still starting
    url = f"/api/runs/{simclr.run_id}/points/{INDEX + 1}/augmentations"
    first = api.get(url, params={"pairs": 3, "size": 32})
    assert first.status_code == 503 and first.headers["Retry-After"] == "2"
    assert "still drawing" in first.json()["detail"] and "try again" in first.json()["detail"]
    monkeypatch.setattr(INSPECTOR, "reply_seconds", 5.0)
    body = _inspected(api, url, pairs=3, size=32)  # the one answer drawn for the first request, now cached
    assert body["index"] == INDEX + 1 and len(body["pairs"]) == 3


def test_refusals_name_the_reason(api: TestClient, runs, settings_factory) -> None:
    _, simclr, ae = runs
    url = f"/api/runs/{simclr.run_id}/points/{INDEX}/augmentations"
    not_contrastive = api.get(f"/api/runs/{ae.run_id}/points/{INDEX}/augmentations")
    assert not_contrastive.status_code == 409
    assert "trained with ae" in not_contrastive.json()["detail"] and "contrastive" in not_contrastive.json()["detail"]
    for pairs in (0, MAX_PAIRS + 1, "many"):
        refused = api.get(url, params={"pairs": pairs})
        assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["query", "pairs"]
    assert api.get(url, params={"size": 8}).json()["detail"][0]["loc"] == ["query", "size"]
    beyond = api.get(f"/api/runs/{simclr.run_id}/points/1797/augmentations")
    assert beyond.status_code == 404 and "0..1796" in beyond.json()["detail"]
    assert api.get("/api/runs/rnope/points/0/augmentations").status_code == 404


def test_a_run_without_a_finished_training_is_refused(runs, settings_factory) -> None:
    from app import catalog, tasks
    from app.registry import Registry

    data_dir = runs[0]
    registry = Registry(settings_factory(data_dir).registry_path).open()
    config = catalog.train_config("digits", "simclr", (1, 8, 8), 1797, {"epochs": 1}, {})
    run_id, _ = tasks.queue_training(registry, config, data_dir, status="running", worker_pid=os.getpid())
    with TestClient(create_app(settings_factory(data_dir))) as client:
        answer = client.get(f"/api/runs/{run_id}/points/0/augmentations")
    # The server start marks the run's orphaned job interrupted: its training never finished.
    assert answer.status_code == 409 and "has no trained encoder yet (status interrupted)" in answer.json()["detail"]


def test_the_pairs_come_from_a_worker_process_the_server_never_imports_torch(runs, settings_factory) -> None:
    session = textwrap.dedent(
        """
        import json, sys, time
        from pathlib import Path
        from fastapi.testclient import TestClient
        from app.main import create_app
        from app.settings import Settings

        settings = Settings(data_dir=Path(sys.argv[1]), workers=1, warm_up=False)
        with TestClient(create_app(settings)) as client:
            for _ in range(120):  # the first answer starts the inspector: 503 with Retry-After until it is drawn
                answer = client.get(f"/api/runs/{sys.argv[2]}/points/3/augmentations", params={"pairs": 2})
                if answer.status_code != 503:
                    break
                time.sleep(float(answer.headers["Retry-After"]))
        print(json.dumps({"status": answer.status_code, "pairs": len(answer.json().get("pairs", [])),
                          "torch": "torch" in sys.modules}))
        """
    )
    done = subprocess.run([sys.executable, "-c", session, str(runs[0]), runs[1].run_id], capture_output=True, text=True,
                          timeout=300, cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"status": 200, "pairs": 2, "torch": False}


def test_the_route_and_the_library_bound_pairs_alike() -> None:
    from ml.augmentation_pairs import MAX_PAIRS as LIBRARY_MAX

    assert MAX_PAIRS == LIBRARY_MAX
