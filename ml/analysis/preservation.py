"""Where the map lies: each point's neighbourhood preservation under a projection.

A point's preservation is the fraction of its k nearest neighbours in the embedding that are also
among its k nearest neighbours on the map (k = 10, Euclidean on both sides). 1 means the map keeps
the point's neighbourhood; a random map scores k / (N − 1) on average. The embedding side is the
run's shared kNN graph (ml.analysis.neighbors); the map side is computed exactly by the same search
on the 2-D coordinates, so an embedding drawn as itself scores exactly 1 everywhere.

The per-point values are stored beside the projection's coordinates as
`projections/<id>/preservation.npy` (float32 N, written atomically); their mean is the projection's
`neighbourhood_preservation` metric.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ml import artifacts
from ml.analysis.neighbors import KnnGraph, compute_knn, load_or_compute_knn

PRESERVATION_K = 10
PRESERVATION_FILE = "preservation.npy"


def neighbourhood_preservation(graph: KnnGraph, coords: np.ndarray, k: int = PRESERVATION_K) -> np.ndarray:
    """float32 (N,) in [0, 1]: per point, |kNN in the embedding ∩ kNN on the map| / k.

    `graph` is the embedding's kNN graph (at least k neighbours per point), `coords` the map (N × c).
    k is lowered to N − 1 for tiny maps. Memory: N × k × k booleans for the intersection (7 MB at 70,000).
    """
    coords = np.asarray(coords, dtype=np.float32)
    if len(coords) != graph.n:
        raise ValueError(f"the map has {len(coords)} points, the embedding's graph {graph.n}")
    k = min(k, graph.n - 1)
    embedding_neighbours = graph.first(k).indices
    map_neighbours = compute_knn(coords, k).indices
    shared = (embedding_neighbours[:, :, None] == map_neighbours[:, None, :]).any(axis=2).sum(axis=1)
    return (shared / k).astype(np.float32)


def preservation_path(run_dir: Path, projection_id: str) -> Path:
    return Path(run_dir) / artifacts.PROJECTIONS_DIR / projection_id / PRESERVATION_FILE


def write_preservation(run_dir: Path, projection_id: str, coords: np.ndarray, graph: KnnGraph | None = None) -> np.ndarray:
    """Compute and store a projection's per-point preservation (float32 N); returns it."""
    graph = graph if graph is not None else load_or_compute_knn(run_dir)
    values = neighbourhood_preservation(graph, coords)
    artifacts.write_npy(preservation_path(run_dir, projection_id), values)
    return values


def load_or_compute_preservation(run_dir: Path, projection_id: str) -> np.ndarray:
    """The stored per-point preservation of a finished projection, computed (and stored) the first
    time for projections made before it existed. Raises FileNotFoundError without coords.npy."""
    path = preservation_path(run_dir, projection_id)
    if path.exists():
        return np.load(path)
    coords = np.load(path.parent / "coords.npy")
    return write_preservation(run_dir, projection_id, coords)
