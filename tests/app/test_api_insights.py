"""The insight endpoints on a finished digits AE run: neighbourhood preservation in the points payload,
cluster stability, the epoch timeline, and the decoder."""
from __future__ import annotations

import base64

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
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
