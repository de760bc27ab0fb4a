"""Run-directory API: files written atomically with their meta, listing, loading, refusals."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import make_blobs

from ml import artifacts
from ml.analysis.run_analyses import (
    list_clusterings,
    list_projections,
    load_clustering,
    load_projection,
    run_clustering,
    run_projection,
)
from ml.analysis.neighbors import KNN_FILE
from ml.params import ParamError
from ml.progress import Stopped

PROJECTION_KEYS = {"id", "method", "params", "seed", "n_components", "n_points", "seconds", "trustworthiness",
                   "neighbourhood_preservation", "knn_reused", "created"}
CLUSTERING_KEYS = {"id", "method", "params", "on", "seed", "n_points", "n_clusters", "noise_fraction", "silhouette", "ari", "nmi", "accuracy", "seconds", "created"}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    x, y = make_blobs(n_samples=240, n_features=12, centers=4, cluster_std=1.0, random_state=1)
    folder = tmp_path_factory.mktemp("run")
    artifacts.write_npy(folder / artifacts.EMBEDDINGS, x.astype(np.float32))
    artifacts.write_npy(folder / artifacts.LABELS, y.astype(np.int64))
    return folder


def _no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if p.name.startswith(".") and p.name.endswith(".tmp")]


def test_run_projection_writes_coords_and_meta(run_dir: Path) -> None:
    meta = run_projection(run_dir, "pca", {}, seed=0, projection_id="pca-a")
    folder = run_dir / "projections" / "pca-a"
    assert set(meta) == PROJECTION_KEYS
    assert meta["id"] == "pca-a" and meta["params"] == {"n_components": 2} and meta["n_points"] == 240
    assert 0.5 < meta["trustworthiness"] <= 1.0
    assert artifacts.read_json(folder / "meta.json") == meta
    coords = load_projection(run_dir, "pca-a")
    assert coords.shape == (240, 2) and coords.dtype == np.float32
    assert (run_dir / KNN_FILE).exists() and _no_temp_files(run_dir)
    assert [m["id"] for m in list_projections(run_dir)] == ["pca-a"]


def test_run_projection_umap_reuses_the_graph(run_dir: Path) -> None:
    meta = run_projection(run_dir, "umap", {"n_epochs": 30, "n_neighbors": 10}, seed=1)
    assert meta["knn_reused"] is True and meta["id"].startswith("umap-")
    assert meta["params"]["n_epochs"] == 30 and meta["trustworthiness"] > 0.8


def test_run_clustering_on_the_embedding_scores_against_labels(run_dir: Path) -> None:
    meta = run_clustering(run_dir, "kmeans", {}, clustering_id="km")
    assert set(meta) == CLUSTERING_KEYS
    assert meta["params"]["n_clusters"] == 4 and meta["params"]["k_source"] == "classes"
    assert meta["ari"] == 1.0 and meta["nmi"] == 1.0 and meta["accuracy"] == 1.0
    assert meta["n_clusters"] == 4 and meta["noise_fraction"] == 0.0 and meta["silhouette"] > 0.5
    labels = load_clustering(run_dir, "km")
    assert labels.shape == (240,) and labels.dtype == np.int64
    assert artifacts.read_json(run_dir / "clusterings" / "km" / "meta.json") == meta


def test_run_clustering_on_a_projection(run_dir: Path) -> None:
    run_projection(run_dir, "pca", {"n_components": 3}, projection_id="pca-3")
    meta = run_clustering(run_dir, "dbscan", {}, on="pca-3", clustering_id="db")
    assert meta["on"] == "pca-3" and meta["params"]["eps_source"] == "knee"
    assert meta["n_clusters"] >= 1 and 0.0 <= meta["noise_fraction"] < 0.5
    assert "db" in [m["id"] for m in list_clusterings(run_dir)]


def test_without_labels_scores_are_null(tmp_path: Path) -> None:
    x, _ = make_blobs(n_samples=60, centers=2, random_state=0)
    artifacts.write_npy(tmp_path / artifacts.EMBEDDINGS, x.astype(np.float32))
    meta = run_clustering(tmp_path, "kmeans", {"n_clusters": 2})
    assert meta["ari"] is None and meta["nmi"] is None and meta["accuracy"] is None


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda d: run_projection(d, "umap", {"spread": 1}), "unknown parameter spread; allowed: n_components"),
        (lambda d: run_projection(d, "tsne", {"perplexity": "lots"}), "perplexity must be a number"),
        (lambda d: run_clustering(d, "hdbscan", {"min_cluster_size": 1}), "min_cluster_size must be >= 2"),
        (lambda d: run_clustering(d, "kmeans", {}, on="no-such"), "no finished projection 'no-such'"),
        (lambda d: run_clustering(d, "kmeans", {}, on="../x"), "no finished projection"),
        (lambda d: run_projection(d, "pca", {}, projection_id="../escape"), "must be 1-64 letters"),
    ],
)
def test_bad_requests_are_refused_and_write_nothing(run_dir: Path, call, message: str) -> None:  # noqa: ANN001
    before = sorted(p.relative_to(run_dir) for p in run_dir.rglob("*"))
    with pytest.raises(ParamError, match=message):
        call(run_dir)
    assert sorted(p.relative_to(run_dir) for p in run_dir.rglob("*")) == before


def test_an_existing_id_is_not_overwritten(run_dir: Path) -> None:
    run_projection(run_dir, "pca", {}, projection_id="once")
    with pytest.raises(ParamError, match="already exists"):
        run_projection(run_dir, "pca", {}, projection_id="once")


def test_stopped_projection_leaves_no_result(run_dir: Path) -> None:
    with pytest.raises(Stopped):
        run_projection(run_dir, "tsne", {"n_iter": 50, "early_exaggeration_iter": 50}, projection_id="halted", progress=lambda i, s, m: m["fraction"] > 0.2)
    assert not (run_dir / "projections" / "halted").exists()
    assert "halted" not in [m["id"] for m in list_projections(run_dir)]
