"""The shared kNN graph, its cache, neighbors_of and trustworthiness."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.manifold import trustworthiness as sklearn_trustworthiness

from ml import artifacts, neighbors
from ml.neighbors import KnnGraph, compute_knn, load_or_compute_knn, neighbors_of, trustworthiness


@pytest.fixture(scope="module")
def points() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(200, 6)).astype(np.float32)


def _exact(points: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    d = np.linalg.norm(points[:, None, :] - points[None, :, :], axis=2)
    np.fill_diagonal(d, np.inf)
    order = np.argsort(d, axis=1)[:, :k]
    return order, np.take_along_axis(d, order, axis=1)


def test_exact_graph_matches_brute_force_and_excludes_self(points: np.ndarray) -> None:
    graph = compute_knn(points, k=90)
    indices, distances = _exact(points, 90)
    assert graph.exact and graph.indices.shape == (200, 90) and graph.distances.dtype == np.float32
    assert not (graph.indices == np.arange(200)[:, None]).any()
    np.testing.assert_array_equal(graph.indices, indices)
    np.testing.assert_allclose(graph.distances, distances, rtol=1e-4, atol=1e-4)


def test_duplicated_points_still_lose_only_themselves() -> None:
    x = np.repeat(np.arange(10, dtype=np.float32)[:, None], 3, axis=0)  # every point three times
    graph = compute_knn(x, k=4)
    assert not (graph.indices == np.arange(30)[:, None]).any()
    np.testing.assert_array_equal(graph.distances[:, :2], 0.0)


def test_approximate_path_for_large_inputs(points: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real pynndescent path (its first call compiles numba code: this test is slow once)."""
    monkeypatch.setattr(neighbors, "EXACT_MAX_POINTS", 50)
    graph = compute_knn(points, k=10, seed=4)
    exact, _ = _exact(points, 10)
    assert not graph.exact and graph.indices.shape == (200, 10) and graph.indices.dtype == np.int64
    assert not (graph.indices == np.arange(200)[:, None]).any()  # each point's own entry is removed
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(graph.indices, exact)])
    assert recall >= 0.95
    assert np.all(np.diff(graph.distances, axis=1) >= -1e-5)  # sorted nearest first


def _run_dir(tmp_path: Path, x: np.ndarray) -> Path:
    artifacts.write_npy(tmp_path / artifacts.EMBEDDINGS, x)
    return tmp_path


def test_graph_is_cached_and_recomputed_for_a_new_embedding(points: np.ndarray, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = _run_dir(tmp_path, points)
    first = load_or_compute_knn(run_dir)
    assert (run_dir / neighbors.KNN_FILE).exists()

    def refuse(*args: object, **kwargs: object) -> KnnGraph:
        raise AssertionError("the cached graph should have been used")

    monkeypatch.setattr(neighbors, "compute_knn", refuse)
    np.testing.assert_array_equal(load_or_compute_knn(run_dir).indices, first.indices)
    monkeypatch.undo()

    artifacts.write_npy(run_dir / artifacts.EMBEDDINGS, points[::-1].copy())
    second = load_or_compute_knn(run_dir)
    np.testing.assert_array_equal(second.indices, 199 - first.indices[::-1])


def test_neighbors_of_serves_the_graph_and_wider_requests(points: np.ndarray, tmp_path: Path) -> None:
    run_dir = _run_dir(tmp_path, points)
    exact, distances = _exact(points, 120)
    indices, dist = neighbors_of(run_dir, 7, 5)
    np.testing.assert_array_equal(indices, exact[7, :5])
    np.testing.assert_allclose(dist, distances[7, :5], rtol=1e-4)
    wide, wide_dist = neighbors_of(run_dir, 7, 120)
    np.testing.assert_array_equal(wide, exact[7])
    np.testing.assert_allclose(wide_dist, distances[7], rtol=1e-4)
    with pytest.raises(IndexError, match="0..199"):
        neighbors_of(run_dir, 200, 5)
    with pytest.raises(ValueError, match="k must be"):
        neighbors_of(run_dir, 0, 0)


def test_trustworthiness_equals_scikit_learn_on_all_points(points: np.ndarray) -> None:
    coords = points[:, :2] + 0.3 * np.random.default_rng(1).normal(size=(200, 2))
    expected = sklearn_trustworthiness(points, coords, n_neighbors=10)
    graph = compute_knn(points, k=12)  # narrow on purpose: most ranks then need the exact pass
    assert trustworthiness(points, coords) == pytest.approx(expected, abs=1e-12)
    assert trustworthiness(points, coords, graph) == pytest.approx(expected, abs=1e-12)


def test_sampled_trustworthiness_is_close_to_the_full_value() -> None:
    x = np.random.default_rng(2).normal(size=(1200, 5)).astype(np.float32)
    coords = x[:, :2]
    full = trustworthiness(x, coords)
    sampled = trustworthiness(x, coords, compute_knn(x), sample=400, seed=3)
    assert 0.5 < full < 0.99
    assert abs(sampled - full) < 0.02


def test_neighbors_of_follows_a_retrained_embedding(points: np.ndarray, tmp_path: Path) -> None:
    run_dir = _run_dir(tmp_path, points)
    before, _ = neighbors_of(run_dir, 0, 3)
    artifacts.write_npy(run_dir / artifacts.EMBEDDINGS, points[::-1].copy())
    after, _ = neighbors_of(tmp_path, 199, 3)
    np.testing.assert_array_equal(after, 199 - before)
