"""The shared kNN graph, its cache, neighbors_of and trustworthiness."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.manifold import trustworthiness as sklearn_trustworthiness
from sklearn.neighbors import NearestNeighbors

from ml import artifacts
from ml.analysis import neighbors
from ml.analysis.neighbors import KnnGraph, compute_knn, load_or_compute_knn, neighbors_of, trustworthiness


@pytest.fixture(scope="module")
def points() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(200, 6)).astype(np.float32)


def _exact(points: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    d = np.linalg.norm(points[:, None, :] - points[None, :, :], axis=2)
    np.fill_diagonal(d, np.inf)
    order = np.argsort(d, axis=1)[:, :k]
    return order, np.take_along_axis(d, order, axis=1)


def _sklearn_neighbours(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's exact neighbours of every row, itself excluded (kneighbors() without X)."""
    distances, indices = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(x).kneighbors()
    return indices, distances


def _assert_same_neighbours(graph: KnnGraph, x: np.ndarray, k: int) -> None:
    """Equal to scikit-learn's graph, where equally distant neighbours may come in any order."""
    indices, distances = _sklearn_neighbours(x, k)
    assert graph.indices.shape == (len(x), k) and graph.indices.dtype == np.int64 and graph.distances.dtype == np.float32
    assert not (graph.indices == np.arange(len(x))[:, None]).any()
    assert all(len(set(row)) == k for row in graph.indices)
    np.testing.assert_allclose(graph.distances, distances, rtol=1e-5, atol=1e-5)
    # Each listed neighbour is at the distance given for it, so a differing index is a tie.
    true = np.linalg.norm(x[graph.indices].astype(np.float64) - x[:, None, :], axis=2)
    np.testing.assert_allclose(graph.distances, true, rtol=1e-5, atol=1e-5)
    # A tie: another point (listed or not) at the same distance from the row's point.
    full = np.sort(np.linalg.norm(x[:, None, :].astype(np.float64) - x[None, :, :], axis=2), axis=1)[:, 1:]
    tol = 1e-6 * (1.0 + distances)
    low = np.stack([np.searchsorted(row, d - t) for row, d, t in zip(full, distances, tol)])
    high = np.stack([np.searchsorted(row, d + t, side="right") for row, d, t in zip(full, distances, tol)])
    ties = high - low > 1
    assert (~ties).any()  # the comparison below is not empty
    np.testing.assert_array_equal(graph.indices[~ties], indices[~ties])


@pytest.mark.parametrize(("n", "block"), [(200, 64), (2_500, neighbors.RERANK_BLOCK), (12, 5)])
def test_exact_graph_equals_scikit_learn_across_blocks(n: int, block: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Sizes that end inside a re-ranking block, after several, and below faiss's and k's sizes."""
    monkeypatch.setattr(neighbors, "RERANK_BLOCK", block)
    x = np.random.default_rng(n).normal(size=(n, 8)).astype(np.float32) + 50.0  # offset: rounding
    _assert_same_neighbours(compute_knn(x, k=90), x, min(90, n - 1))


def test_exact_graph_with_many_ties_equals_scikit_learn() -> None:
    x = np.random.default_rng(5).integers(0, 4, size=(300, 3)).astype(np.float32)  # a 4 × 4 × 4 grid
    _assert_same_neighbours(compute_knn(x, k=40), x, 40)


def test_duplicated_points_still_lose_only_themselves() -> None:
    x = np.repeat(np.arange(10, dtype=np.float32)[:, None], 3, axis=0)  # every point three times
    graph = compute_knn(x, k=4)
    assert not (graph.indices == np.arange(30)[:, None]).any()
    np.testing.assert_array_equal(graph.distances[:, :2], 0.0)


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


def test_an_approximate_graph_cached_by_an_earlier_version_is_recomputed(points: np.ndarray, tmp_path: Path) -> None:
    run_dir = _run_dir(tmp_path, points)
    exact = load_or_compute_knn(run_dir)
    with np.load(run_dir / neighbors.KNN_FILE) as stored:
        fingerprint = stored["fingerprint"]
    wrong = np.zeros_like(exact.indices)
    artifacts.write_npz(run_dir / neighbors.KNN_FILE, indices=wrong, distances=exact.distances, exact=np.array(False), fingerprint=fingerprint)
    np.testing.assert_array_equal(load_or_compute_knn(run_dir).indices, exact.indices)


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
