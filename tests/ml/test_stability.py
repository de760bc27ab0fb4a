"""Cluster stability: well-separated blobs are stable, uniform noise is not; matching and refusals."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import make_blobs

from ml import artifacts
from ml.analysis.clustering import make_clustering
from ml.analysis.run_analyses import run_clustering
from ml.analysis.stability import cluster_stability, match_to_consensus, run_stability


def _kmeans(points: np.ndarray, k: int) -> tuple[np.ndarray, dict]:
    clustering = make_clustering("kmeans", {"n_clusters": k}).fit(points)
    return clustering.labels_, clustering.params_


def test_well_separated_blobs_are_stable() -> None:
    points, _ = make_blobs(n_samples=600, centers=4, n_features=5, cluster_std=0.5, random_state=0)
    labels, params = _kmeans(points, 4)
    result = cluster_stability(points, labels, "kmeans", params, repeats=6, seed=0)
    assert result["mean_ari"] > 0.99 and result["repeats"] == 6
    assert result["point_stability"].dtype == np.float32 and result["point_stability"].shape == (600,)
    assert result["point_stability"].min() > 0.99
    assert set(result["per_cluster"]) == {"0", "1", "2", "3"} and min(result["per_cluster"].values()) > 0.99


def test_uniform_noise_is_clearly_less_stable() -> None:
    points = np.random.default_rng(0).uniform(size=(600, 5)).astype(np.float32)
    labels, params = _kmeans(points, 8)
    result = cluster_stability(points, labels, "kmeans", params, repeats=6, seed=0)
    assert result["mean_ari"] < 0.6  # 0.41 with these seeds; blobs above: > 0.99
    assert result["point_stability"].mean() < 0.8 and 0.0 <= result["point_stability"].min()


def test_matching_renames_clusters_one_to_one_and_keeps_noise() -> None:
    consensus = np.array([0, 0, 0, 1, 1, 2, -1])
    relabelled = np.array([5, 5, 7, 3, 3, 7, -1])
    assert match_to_consensus(consensus, relabelled).tolist() == [0, 0, 2, 1, 1, 2, -1]
    # three clusters for two: the one matched to nothing is -2, never counted as a hit
    assert match_to_consensus(np.array([0, 0, 1, 1]), np.array([4, 5, 6, 6])).tolist() == [0, -2, 1, 1]


@pytest.mark.parametrize("repeats", [1, 101])
def test_repeats_outside_the_range_are_refused(repeats: int) -> None:
    with pytest.raises(ValueError, match="repeats must be between 2 and 100"):
        cluster_stability(np.zeros((10, 2)), np.zeros(10, dtype=np.int64), "kmeans", {"n_clusters": 2}, repeats)


@pytest.mark.parametrize(("method", "params"), [("dbscan", {}), ("hdbscan", {}), ("agglomerative", {"n_clusters": 3}), ("gmm", {}), ("scan", {"epochs": 10})])
def test_every_method_reruns_with_its_resolved_parameters(tmp_path: Path, method: str, params: dict) -> None:
    points, _ = make_blobs(n_samples=300, centers=3, n_features=4, cluster_std=0.4, random_state=2)
    artifacts.write_npy(tmp_path / artifacts.EMBEDDINGS, points.astype(np.float32))
    run_clustering(tmp_path, method, params, clustering_id="c")
    summary = run_stability(tmp_path, "c", repeats=3)
    stored = np.load(tmp_path / "clusterings" / "c" / "stability.npy")
    assert stored.shape == (300,) and 0.0 <= stored.min() and stored.max() <= 1.0
    assert artifacts.read_json(tmp_path / "clusterings" / "c" / "stability.json") == summary
    assert summary["repeats"] == 3 and summary["mean_ari"] > 0.8
