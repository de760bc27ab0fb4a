"""Neighbourhood preservation: exact on a map that is the embedding itself, chance level on a shuffled map."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ml import artifacts
from ml.analysis.neighbors import compute_knn
from ml.analysis.preservation import (
    PRESERVATION_K,
    load_or_compute_preservation,
    neighbourhood_preservation,
    preservation_path,
)
from ml.analysis.run_analyses import run_projection

N = 2_000


@pytest.fixture(scope="module")
def plane() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(N, 2)).astype(np.float32)


def test_an_embedding_drawn_as_itself_keeps_every_neighbourhood(plane: np.ndarray) -> None:
    values = neighbourhood_preservation(compute_knn(plane), plane)
    assert values.dtype == np.float32 and values.shape == (N,)
    assert np.all(values == 1.0)


def test_a_shuffled_map_keeps_neighbourhoods_at_chance(plane: np.ndarray) -> None:
    shuffled = plane[np.random.default_rng(1).permutation(N)]
    values = neighbourhood_preservation(compute_knn(plane), shuffled)
    chance = PRESERVATION_K / (N - 1)  # expected overlap of two random 10-sets among N - 1 points, over k
    assert abs(values.mean() - chance) < 0.003
    assert values.min() >= 0.0 and values.max() <= 0.3


def test_a_rotated_and_scaled_map_is_exact_and_a_noisy_one_partial(plane: np.ndarray) -> None:
    graph = compute_knn(plane)
    turn = np.array([[0.0, -1.0], [1.0, 0.0]], dtype=np.float32)
    assert np.all(neighbourhood_preservation(graph, 3.0 * plane @ turn) == 1.0)
    noisy = plane + np.random.default_rng(2).normal(scale=0.05, size=plane.shape).astype(np.float32)
    assert 0.3 < neighbourhood_preservation(graph, noisy).mean() < 0.95


def test_a_projection_stores_the_values_and_their_mean(tmp_path: Path) -> None:
    embedding = np.random.default_rng(3).normal(size=(300, 6)).astype(np.float32)
    artifacts.write_npy(tmp_path / artifacts.EMBEDDINGS, embedding)
    meta = run_projection(tmp_path, "pca", {}, projection_id="pca-a")
    stored = np.load(preservation_path(tmp_path, "pca-a"))
    assert stored.shape == (300,) and stored.dtype == np.float32
    assert meta["neighbourhood_preservation"] == pytest.approx(float(stored.mean()))
    assert 0.0 < meta["neighbourhood_preservation"] < 1.0
    # A projection made before the values existed gets them on first use, the same values.
    preservation_path(tmp_path, "pca-a").unlink()
    assert np.array_equal(load_or_compute_preservation(tmp_path, "pca-a"), stored)
    assert preservation_path(tmp_path, "pca-a").exists()
