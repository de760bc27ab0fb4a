"""Clusterings: recovery of well-separated groups, noise, automatic choices, limits, refusals."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from ml.analysis import clustering, density, hierarchical
from ml.analysis.clustering import CLUSTERINGS, make_clustering
from ml.analysis.density import knee_eps
from ml.analysis.neighbors import KnnGraph, compute_knn
from ml.params import ParamError
from ml.progress import Stopped


@pytest.fixture(scope="module")
def blobs() -> tuple[np.ndarray, np.ndarray]:
    x, y = make_blobs(n_samples=300, centers=[[0, 0, 0], [10, 0, 0], [0, 10, 0]], cluster_std=0.6, random_state=0)
    return x.astype(np.float32), y


@pytest.fixture(scope="module")
def with_outliers(blobs: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, KnnGraph]:
    outliers = np.array([[40, 40, 40], [-40, 30, 0], [30, -40, 5], [0, 0, 50], [-35, -35, -35]], dtype=np.float32)
    x = np.vstack([blobs[0], outliers])
    return x, compute_knn(x)


def test_registry_names() -> None:
    assert set(CLUSTERINGS) == {"kmeans", "dbscan", "hdbscan", "agglomerative", "gmm", "scan"}


def test_kmeans_recovers_blobs_with_k_from_classes(blobs: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = blobs
    model = make_clustering("kmeans").fit(x, n_classes=3)
    assert adjusted_rand_score(y, model.labels_) == 1.0
    assert model.params_ == {"n_clusters": 3, "n_init": 10, "k_source": "classes"}


def test_kmeans_without_labels_chooses_k_by_silhouette(blobs: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = blobs
    model = make_clustering("kmeans").fit(x)
    assert model.params_["n_clusters"] == 3 and model.params_["k_source"] == "silhouette"
    assert adjusted_rand_score(y, model.labels_) == 1.0


def test_dbscan_marks_injected_outliers_as_noise(with_outliers: tuple[np.ndarray, KnnGraph], blobs: tuple[np.ndarray, np.ndarray]) -> None:
    x, graph = with_outliers
    model = make_clustering("dbscan").fit(x, graph)
    assert model.params_["eps_source"] == "knee" and model.params_["eps"] > 0
    np.testing.assert_array_equal(model.labels_[300:], -1)
    assert adjusted_rand_score(blobs[1], model.labels_[:300]) > 0.95
    # the suggestion does not depend on whether the shared graph was given
    assert make_clustering("dbscan").fit(x).params_["eps"] == pytest.approx(model.params_["eps"], rel=1e-5)


def test_dbscan_with_a_given_eps_records_it(with_outliers: tuple[np.ndarray, KnnGraph]) -> None:
    model = make_clustering("dbscan", {"eps": 2.0, "min_samples": 4}).fit(with_outliers[0])
    assert model.params_ == {"eps": 2.0, "min_samples": 4, "eps_source": "given"}
    assert len(set(model.labels_[:300]) - {-1}) == 3


def test_knee_of_a_hockey_stick_curve() -> None:
    curve = np.concatenate([np.linspace(1.0, 2.0, 90), np.linspace(10.0, 100.0, 10)])
    assert knee_eps(curve) == pytest.approx(2.0)


def test_hdbscan_recovers_blobs_and_flags_outliers(with_outliers: tuple[np.ndarray, KnnGraph], blobs: tuple[np.ndarray, np.ndarray]) -> None:
    model = make_clustering("hdbscan", {"min_cluster_size": 20}).fit(with_outliers[0])
    assert model.params_ == {"min_cluster_size": 20, "min_samples": 20, "implementation": "scikit-learn"}
    np.testing.assert_array_equal(model.labels_[300:], -1)
    core = model.labels_[:300] != -1
    assert core.mean() > 0.9
    assert adjusted_rand_score(blobs[1][core], model.labels_[:300][core]) == 1.0


@pytest.fixture(scope="module")
def uneven() -> np.ndarray:
    """Six 5-d blobs of different spreads and 80 uniform outliers: where HDBSCAN's choices matter."""
    x, _ = make_blobs(n_samples=800, centers=6, n_features=5, cluster_std=[0.5, 1.0, 1.5, 0.8, 2.0, 0.3], random_state=1)
    return np.vstack([x, np.random.default_rng(1).uniform(-12, 12, size=(80, 5))]).astype(np.float32)


@pytest.mark.parametrize(("min_cluster_size", "min_samples"), [(15, 15), (15, 5), (30, 3), (10, 2), (10, 1)])
def test_hdbscan_fast_path_gives_scikit_learn_labels(
    uneven: np.ndarray, min_cluster_size: int, min_samples: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sklearn.cluster import HDBSCAN

    monkeypatch.setattr(density, "HDBSCAN_FAST_MIN_POINTS", 100)
    params = {"min_cluster_size": min_cluster_size, "min_samples": min_samples}
    model = make_clustering("hdbscan", params).fit(uneven)
    expected = HDBSCAN(**params, copy=True).fit_predict(uneven)
    assert model.params_["implementation"] == "fast_hdbscan"
    assert model.labels_.max() == expected.max() and model.labels_.max() >= 4
    assert adjusted_rand_score(expected, model.labels_) >= 0.99
    assert np.mean(model.labels_ != -1) == pytest.approx(np.mean(expected != -1), abs=0.005)


def test_hdbscan_keeps_scikit_learn_above_30_dimensions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(density, "HDBSCAN_FAST_MIN_POINTS", 100)
    x, y = make_blobs(n_samples=300, centers=3, n_features=31, cluster_std=0.5, random_state=0)
    model = make_clustering("hdbscan", {"min_cluster_size": 20}).fit(x.astype(np.float32))
    assert model.params_["implementation"] == "scikit-learn"
    assert adjusted_rand_score(y, model.labels_) == 1.0


@pytest.mark.parametrize(
    ("limit", "value", "shape", "params", "message"),
    [
        ("HDBSCAN_EXACT_MAX_WORK", 1_000_000, (300, 31), {}, r"hdbscan on 31 dimensions is limited to 179 points and this has 300 .* set on to a projection"),
        ("HDBSCAN_MAX_NEIGHBOUR_ENTRIES", 1_000, (300, 3), {"min_samples": 10}, "min_samples = 10 with 300 points needs more than 1,000 neighbour entries; set min_samples to at most 3"),
        ("HDBSCAN_MAX_POINTS", 250, (300, 3), {}, "hdbscan is limited to 250 points and this has 300"),
    ],
)
def test_hdbscan_refuses_hopeless_inputs_before_any_work(
    limit: str, value: int, shape: tuple[int, int], params: dict, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(density, limit, value)
    calls: list[float] = []
    x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    with pytest.raises(ParamError, match=message):
        make_clustering("hdbscan", params).fit(x, progress=lambda iteration, step, metrics: calls.append(metrics["fraction"]))
    assert calls == []  # refused before the first progress report, i.e. before any clustering


def test_hdbscan_limits_allow_a_70k_run_in_10_dimensions() -> None:
    model = make_clustering("hdbscan")
    model.params_ = model.params.validate({})
    model._check(np.zeros((70_000, 10), dtype=np.float32))  # the fmnist pipeline's UMAP-10: accepted
    with pytest.raises(ParamError, match="limited to 49,497 points and this has 70,000"):
        model._check(np.zeros((70_000, 128), dtype=np.float32))


@pytest.mark.parametrize("linkage", ["ward", "average", "complete"])
def test_agglomerative_recovers_blobs(linkage: str, blobs: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = blobs
    model = make_clustering("agglomerative", {"linkage": linkage}).fit(x, n_classes=3)
    assert model.params_["connectivity"] is None and model.params_["n_clusters"] == 3
    assert adjusted_rand_score(y, model.labels_) == 1.0


def test_agglomerative_uses_a_knn_connectivity_graph_above_the_threshold(blobs: tuple[np.ndarray, np.ndarray], monkeypatch: pytest.MonkeyPatch) -> None:
    x, y = blobs
    monkeypatch.setattr(hierarchical, "AGGLOMERATIVE_CONNECTIVITY_ABOVE", 100)
    model = make_clustering("agglomerative", {"n_clusters": 3})
    assert model.needs_knn(300)
    model.fit(x, compute_knn(x))
    assert model.params_["connectivity"] == "knn-15"
    assert adjusted_rand_score(y, model.labels_) == 1.0


def test_agglomerative_refuses_above_the_limit(blobs: tuple[np.ndarray, np.ndarray], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hierarchical, "AGGLOMERATIVE_MAX_POINTS", 250)
    with pytest.raises(ParamError, match="agglomerative clustering is limited to 250 points and this has 300"):
        make_clustering("agglomerative").fit(blobs[0])


@pytest.fixture(scope="module")
def sheared_blobs() -> tuple[np.ndarray, np.ndarray]:
    """Three elongated, tilted groups (scikit-learn's anisotropic example), where k-means cuts across them."""
    x, y = make_blobs(n_samples=600, centers=3, random_state=170)
    return (x @ np.array([[0.6, -0.64], [-0.4, 0.85]])).astype(np.float32), y


def test_gmm_recovers_sheared_groups_that_kmeans_cuts(sheared_blobs: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = sheared_blobs
    assert adjusted_rand_score(y, make_clustering("kmeans").fit(x, n_classes=3).labels_) < 0.7
    model = make_clustering("gmm").fit(x, n_classes=3)
    assert adjusted_rand_score(y, model.labels_) == 1.0
    assert model.params_ == {"n_clusters": 3, "covariance_type": "full", "n_init": 1, "k_source": "classes"}


def test_gmm_without_labels_chooses_k_by_bic(sheared_blobs: tuple[np.ndarray, np.ndarray], blobs: tuple[np.ndarray, np.ndarray]) -> None:
    for x, y in (sheared_blobs, blobs):
        model = make_clustering("gmm").fit(x)
        assert model.params_["k_source"] == "bic" and model.params_["n_clusters"] == 3
        assert adjusted_rand_score(y, model.labels_) == 1.0
    seen: list[float] = []
    make_clustering("gmm", {"covariance_type": "diag"}).fit(blobs[0], progress=lambda i, s, m: seen.append(m["fraction"]))
    assert seen[0] == 0.0 and seen[-1] == 1.0 and len(seen) == 2 + len(clustering.K_CHOICES)


def test_gmm_refuses_a_full_covariance_in_many_dimensions_before_any_work() -> None:
    from ml.analysis import mixture

    wide = np.random.default_rng(0).normal(size=(50, mixture.FULL_COVARIANCE_MAX_DIM + 1)).astype(np.float32)
    for covariance in ("full", "tied"):
        with pytest.raises(ParamError, match=f"a {covariance} covariance is limited to 128 dimensions and this has 129; set covariance_type to diag"):
            make_clustering("gmm", {"covariance_type": covariance, "n_clusters": 2}).fit(wide)
    labels = make_clustering("gmm", {"covariance_type": "diag", "n_clusters": 2}).fit(wide).labels_
    assert labels.shape == (50,) and set(labels) <= {0, 1}


@pytest.mark.parametrize(
    ("method", "params", "message"),
    [
        ("kmeans", {"k": 3}, "unknown parameter k; allowed: n_clusters, n_init"),
        ("kmeans", {"n_clusters": 1}, "n_clusters must be >= 2"),
        ("dbscan", {"eps": 0}, "eps must be > 0"),
        ("agglomerative", {"linkage": "median"}, "linkage must be one of ward, average, complete, single"),
        ("gmm", {"covariance_type": "round"}, "covariance_type must be one of full, tied, diag, spherical"),
        ("gmm", {"n_init": 0}, "n_init must be >= 1"),
        ("spectral", {}, "unknown clustering method 'spectral'; allowed: kmeans, dbscan, hdbscan, agglomerative, gmm, scan"),
    ],
)
def test_bad_parameters_are_refused(method: str, params: dict, message: str, blobs: tuple[np.ndarray, np.ndarray]) -> None:
    with pytest.raises(ParamError, match=message):
        make_clustering(method, params).fit(blobs[0])


def test_stopped_through_the_callback(blobs: tuple[np.ndarray, np.ndarray]) -> None:
    calls: list[float] = []

    def stop_after_two(iteration: int, step: int, metrics: dict[str, float]) -> bool:
        calls.append(metrics["fraction"])
        return len(calls) >= 2

    with pytest.raises(Stopped):
        make_clustering("kmeans").fit(blobs[0], progress=stop_after_two)
    assert len(calls) == 2
