"""What keeps a large import usable: a neighbours request never computes the whole kNN graph."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ml import artifacts
from ml.analysis import neighbors


def test_neighbours_of_a_large_embedding_without_graph_are_exact_and_write_no_graph(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    embedding = np.random.default_rng(0).normal(size=(500, 6)).astype(np.float32)
    artifacts.write_npy(tmp_path / artifacts.EMBEDDINGS, embedding)
    monkeypatch.setattr(neighbors, "LAZY_GRAPH_MAX_POINTS", 100)
    found, distances = neighbors.neighbors_of(tmp_path, 7, k=5)
    expected = np.linalg.norm(embedding - embedding[7], axis=1)
    expected[7] = np.inf
    assert list(found) == list(np.argsort(expected, kind="stable")[:5])
    assert np.allclose(distances, np.sort(expected)[:5], rtol=1e-5)
    assert not (tmp_path / neighbors.KNN_FILE).exists()
    with pytest.raises(IndexError):
        neighbors.neighbors_of(tmp_path, 500, k=5)
    monkeypatch.setattr(neighbors, "LAZY_GRAPH_MAX_POINTS", 1_000)  # small enough: the graph is made once
    again, _ = neighbors.neighbors_of(tmp_path, 7, k=5)
    assert list(again) == list(found) and (tmp_path / neighbors.KNN_FILE).exists()
