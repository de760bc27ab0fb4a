"""Projections: shapes, repeatability, quality, parameter refusal and stopping."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits

from ml.analysis.neighbors import KnnGraph, compute_knn, trustworthiness
from ml.params import ParamError
from ml.progress import Stopped
from ml.analysis.projection import PROJECTIONS, make_projection

FAST_TSNE = {"n_iter": 60, "early_exaggeration_iter": 40}


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, KnnGraph]:
    x = load_digits().data.astype(np.float32)
    return x, compute_knn(x)


@pytest.fixture(scope="module")
def small(digits: tuple[np.ndarray, KnnGraph]) -> tuple[np.ndarray, KnnGraph]:
    x = digits[0][:400]
    return x, compute_knn(x)


@pytest.fixture(scope="module")
def umap_digits(digits: tuple[np.ndarray, KnnGraph]) -> np.ndarray:
    x, graph = digits
    return make_projection("umap", {}, random_state=0).fit_transform(x, graph)


def test_registry_names() -> None:
    assert set(PROJECTIONS) == {"pca", "tsne", "umap"}


@pytest.mark.parametrize(("method", "params"), [("pca", {}), ("tsne", FAST_TSNE), ("umap", {"n_epochs": 50})])
def test_each_projection_gives_finite_float32_coordinates(method: str, params: dict, small: tuple[np.ndarray, KnnGraph]) -> None:
    x, graph = small
    projector = make_projection(method, params, random_state=0).fit(x, graph)
    assert projector.embedding_.shape == (400, 2)
    assert projector.embedding_.dtype == np.float32
    assert np.isfinite(projector.embedding_).all()
    assert projector.params_["n_components"] == 2


@pytest.mark.parametrize(("method", "params"), [("pca", {}), ("tsne", FAST_TSNE), ("umap", {"n_epochs": 50, "deterministic": True})])
def test_same_seed_is_bit_for_bit_repeatable(method: str, params: dict, small: tuple[np.ndarray, KnnGraph]) -> None:
    x, graph = small
    first = make_projection(method, params, random_state=3).fit_transform(x, graph)
    second = make_projection(method, params, random_state=3).fit_transform(x, graph)
    np.testing.assert_array_equal(first, second)


def test_parallel_umap_is_repeatable_within_a_bound(digits: tuple[np.ndarray, KnnGraph], umap_digits: np.ndarray) -> None:
    x, graph = digits
    again = make_projection("umap", {}, random_state=0).fit_transform(x, graph)
    assert abs(trustworthiness(x, again, graph) - trustworthiness(x, umap_digits, graph)) < 0.01


def test_umap_on_digits_is_trustworthy(digits: tuple[np.ndarray, KnnGraph], umap_digits: np.ndarray) -> None:
    x, graph = digits
    assert trustworthiness(x, umap_digits, graph) > 0.9


def test_tsne_resolves_automatic_choices_and_reuses_the_graph(small: tuple[np.ndarray, KnnGraph]) -> None:
    x, graph = small
    projector = make_projection("tsne", FAST_TSNE)
    assert projector.needs_knn(400)
    assert not make_projection("tsne", {"perplexity": 40}).needs_knn(400)  # 120 neighbours > 90
    projector.fit(x, graph)
    assert projector.params_["negative_gradient_method"] == "bh"
    assert projector.params_["learning_rate"] == "auto"
    three = make_projection("tsne", {**FAST_TSNE, "n_components": 3}).fit_transform(x, graph)
    assert three.shape == (400, 3)


def test_umap_with_more_components_and_the_graph_only_for_euclidean(small: tuple[np.ndarray, KnnGraph]) -> None:
    x, graph = small
    assert not make_projection("umap", {"metric": "cosine"}).needs_knn(400)
    assert not make_projection("umap", {"n_neighbors": 150}).needs_knn(400)
    projector = make_projection("umap", {"n_components": 3, "n_epochs": 30})
    assert projector.needs_knn(400)
    assert projector.fit_transform(x, graph).shape == (400, 3)


@pytest.mark.parametrize(
    ("method", "params", "message"),
    [
        ("umap", {"neighbours": 5}, "unknown parameter neighbours; allowed: n_components, n_neighbors, min_dist"),
        ("umap", {"min_dist": 2}, "min_dist must be <= 1"),
        ("umap", {"metric": "hamming"}, "metric must be one of euclidean, cosine, manhattan, correlation"),
        ("tsne", {"perplexity": 0}, "perplexity must be >= 1"),
        ("tsne", {"n_components": 3, "negative_gradient_method": "fft"}, "fft supports n_components 1 or 2"),
        ("isomap", {}, "unknown projection method 'isomap'; allowed: pca, tsne, umap"),
    ],
)
def test_bad_parameters_are_refused_with_the_allowed_ones(method: str, params: dict, message: str, small: tuple[np.ndarray, KnnGraph]) -> None:
    with pytest.raises(ParamError, match=message):
        make_projection(method, params).fit(small[0], small[1])


@pytest.mark.parametrize(("method", "params"), [("tsne", FAST_TSNE), ("umap", {"n_epochs": 50})])
def test_progress_reports_fractions_and_stops(method: str, params: dict, small: tuple[np.ndarray, KnnGraph]) -> None:
    x, graph = small
    seen: list[float] = []

    def stop_midway(iteration: int, step: int, metrics: dict[str, float]) -> bool:
        seen.append(metrics["fraction"])
        return metrics["fraction"] >= 0.5

    with pytest.raises(Stopped):
        make_projection(method, params).fit(x, graph, progress=stop_midway)
    assert seen[0] == 0.0 and 0.5 <= seen[-1] < 1.0
    assert seen == sorted(seen)
