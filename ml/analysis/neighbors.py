"""One k-nearest-neighbour graph per embedding, computed once and shared.

The graph is Euclidean, exact, excludes each point itself, and keeps `KNN_K` = 90 neighbours:
that is 3 × perplexity 30, the neighbourhood openTSNE uses for its default perplexity, and it
covers UMAP's `n_neighbors` up to 90, DBSCAN's k-distance curve, the neighbours endpoint and
trustworthiness (k = 10). It is a brute-force search at every size with faiss's flat index
(blocked float32 matrix products on all cores, the best k kept per query): at 70,000 × 32 it is
faster than pynndescent's approximate graph was (BENCHMARKS.md, issue 10).

The graph is cached in the run directory as `knn.npz` (written atomically) together with a
fingerprint of `embeddings.npy` (shape, size, modification time), so a retrained embedding is never
answered with a stale graph.
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ml import artifacts

KNN_FILE = "knn.npz"
KNN_K = 90
# Candidates per point beyond k + 1 that the float32 search returns for the re-ranking: rounding
# in ‖a‖² + ‖b‖² − 2a·b swaps near-equal neighbours, by far fewer places than this.
RERANK_MARGIN = 8
# Rows re-ranked at once: RERANK_BLOCK × (k + 1 + margin) × d float32 (26 MB at k = 90, d = 32).
RERANK_BLOCK = 2_048
# faiss's flat search computes distances one query at a time (SIMD, no BLAS) below 128,000 queries
# and keeps the best k in a heap below k = 100. For a whole graph (N queries, k ≈ 100) the BLAS
# path with the reservoir selection was 2-3× faster at 70,000 × 32 on a 2-core machine.
FAISS_SETTINGS = {"distance_compute_blas_threshold": 20, "distance_compute_min_k_reservoir": 10}


@dataclass(frozen=True)
class KnnGraph:
    """`indices` int64 N × k and `distances` float32 N × k (ascending), each row without the point itself."""

    indices: np.ndarray
    distances: np.ndarray

    @property
    def n(self) -> int:
        return int(self.indices.shape[0])

    @property
    def k(self) -> int:
        return int(self.indices.shape[1])

    def first(self, k: int) -> KnnGraph:
        """The graph restricted to each point's `k` nearest neighbours."""
        if k > self.k:
            raise ValueError(f"the graph has {self.k} neighbours per point, {k} were asked for")
        return KnnGraph(self.indices[:, :k], self.distances[:, :k])

    def with_self(self) -> tuple[np.ndarray, np.ndarray]:
        """Indices and distances N × (k+1) with each point first at distance 0 (UMAP's layout)."""
        own = np.arange(self.n, dtype=np.int64)[:, None]
        indices = np.hstack([own, self.indices])
        distances = np.hstack([np.zeros((self.n, 1), dtype=np.float32), self.distances])
        return indices, distances


def compute_knn(embedding: np.ndarray, k: int = KNN_K) -> KnnGraph:
    """The exact k nearest neighbours (Euclidean) of every row of `embedding` (N × d), excluding the row itself.

    faiss ranks by ‖a‖² + ‖b‖² − 2a·b in float32, whose rounding (on the order of 1e-4 in a small
    distance) can swap near neighbours: it returns `RERANK_MARGIN` candidates more than needed,
    and these are ranked again by directly computed distances (float32, relative error ~1e-7).
    Memory: a float32 copy of the embedding in the index, the N × (k + 1 + margin) candidates,
    and blocks of `RERANK_BLOCK` rows for the re-ranking.
    """
    import faiss

    x = np.ascontiguousarray(embedding, dtype=np.float32)
    n = x.shape[0]
    k = min(k, n - 1)
    if k < 1:
        raise ValueError(f"need at least 2 points for a neighbour graph, got {n}")
    # Distances do not change under a shift; centred rows have smaller norms, so less rounding.
    centred = x - x.mean(axis=0, dtype=np.float64).astype(np.float32)
    index = faiss.IndexFlatL2(x.shape[1])
    index.add(centred)
    with _faiss_settings(faiss, FAISS_SETTINGS):
        _, candidates = index.search(centred, min(n, k + 1 + RERANK_MARGIN))
    indices, distances = _rerank(centred, candidates.astype(np.int64), k + 1)
    return KnnGraph(*_drop_self(indices, distances, k))


@contextmanager
def _faiss_settings(faiss: Any, settings: dict[str, int]) -> Iterator[None]:
    """faiss's search settings are process-wide globals: set them for one search, then restore them."""
    with _faiss_lock:
        before = {name: getattr(faiss.cvar, name) for name in settings}
        try:
            for name, value in settings.items():
                setattr(faiss.cvar, name, value)
            yield
        finally:
            for name, value in before.items():
                setattr(faiss.cvar, name, value)


_faiss_lock = threading.Lock()


def _rerank(x: np.ndarray, candidates: np.ndarray, keep: int) -> tuple[np.ndarray, np.ndarray]:
    """The `keep` nearest of each row's candidates (N × m), by direct distance, equal ones by index."""
    n = x.shape[0]
    indices = np.empty((n, keep), dtype=np.int64)
    distances = np.empty((n, keep), dtype=np.float32)
    for start in range(0, n, RERANK_BLOCK):
        rows = slice(start, start + RERANK_BLOCK)
        block = candidates[rows]
        diff = x[block] - x[rows, None, :]
        dist = np.sqrt(np.einsum("bmd,bmd->bm", diff, diff))
        order = np.lexsort((block, dist), axis=-1)[:, :keep]
        indices[rows] = np.take_along_axis(block, order, axis=1)
        distances[rows] = np.take_along_axis(dist, order, axis=1)
    return indices, distances


def _drop_self(indices: np.ndarray, distances: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Remove each row's own index (usually first, but not always when points are duplicated)."""
    own = indices == np.arange(indices.shape[0])[:, None]
    # Rows that do not contain themselves (duplicates pushed them out) lose their last neighbour instead.
    missing = ~own.any(axis=1)
    own[missing, -1] = True
    keep = ~own
    return indices[keep].reshape(-1, k), distances[keep].reshape(-1, k)


def _fingerprint(run_dir: Path) -> np.ndarray:
    stat = (Path(run_dir) / artifacts.EMBEDDINGS).stat()
    return np.array([stat.st_size, stat.st_mtime_ns], dtype=np.int64)


def load_embedding(run_dir: Path) -> np.ndarray:
    """The run's embeddings.npy as float32 N × d."""
    return np.load(Path(run_dir) / artifacts.EMBEDDINGS).astype(np.float32, copy=False)


def load_or_compute_knn(run_dir: Path, k: int = KNN_K, seed: int = 0) -> KnnGraph:
    """The run's cached kNN graph with at least min(k, N-1) neighbours, computing and saving it if needed.

    `seed` is accepted from callers that pass their run's seed; the exact graph does not use it.
    """
    run_dir = Path(run_dir)
    cached = _read_cache(run_dir)
    if cached is not None and cached.k >= min(k, cached.n - 1):
        return cached
    graph = compute_knn(load_embedding(run_dir), max(k, KNN_K))
    artifacts.write_npz(
        run_dir / KNN_FILE,
        indices=graph.indices,
        distances=graph.distances,
        exact=np.array(True),
        fingerprint=_fingerprint(run_dir),
    )
    return graph


def _read_cache(run_dir: Path) -> KnnGraph | None:
    path = run_dir / KNN_FILE
    if not path.exists():
        return None
    with np.load(path) as stored:
        # Graphs cached before issue 10 may hold approximate neighbours (exact = False): recomputed.
        if not bool(stored["exact"]) or not np.array_equal(stored["fingerprint"], _fingerprint(run_dir)):
            return None
        return KnnGraph(stored["indices"], stored["distances"])


# The server asks for one point's neighbours per click: keep the arrays of recent runs in memory,
# keyed by the files' sizes and modification times (a stat per call, no read), so that a
# recomputed graph or a retrained embedding is picked up.
_lock = threading.Lock()


# Above this many points, a request never computes the whole kNN graph (see neighbors_of).
LAZY_GRAPH_MAX_POINTS = 200_000


@lru_cache(maxsize=8)
def _cached_graph(run_dir: str, knn_mtime_ns: int, embedding_fingerprint: tuple[int, int]) -> KnnGraph:
    return load_or_compute_knn(Path(run_dir))


@lru_cache(maxsize=4)
def _cached_embedding(run_dir: str, embedding_fingerprint: tuple[int, int]) -> np.ndarray:
    return load_embedding(Path(run_dir))


def neighbors_of(run_dir: Path, i: int, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Indices (int64, k) and Euclidean distances (float32, k) of point `i`'s nearest neighbours.

    Served from the cached graph when k ≤ its width; wider requests are answered exactly from the
    embedding, and so is every request on an embedding of more than LAZY_GRAPH_MAX_POINTS rows
    that has no graph yet (a large import: the whole graph would take minutes inside a request).
    Raises IndexError for a point outside the embedding and ValueError for k < 1.
    """
    run_dir = Path(run_dir).resolve()
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    knn_path = run_dir / KNN_FILE
    fingerprint = tuple(int(v) for v in _fingerprint(run_dir))
    n = int(np.load(run_dir / artifacts.EMBEDDINGS, mmap_mode="r").shape[0])
    graph = None
    if knn_path.exists() or n <= LAZY_GRAPH_MAX_POINTS:
        with _lock:
            knn_mtime = knn_path.stat().st_mtime_ns if knn_path.exists() else 0
            graph = _cached_graph(str(run_dir), knn_mtime, fingerprint)
    if not 0 <= i < n:
        raise IndexError(f"point {i} is outside the embedding (0..{n - 1})")
    k = min(k, n - 1)
    if graph is not None and k <= graph.k:
        return graph.indices[i, :k].copy(), graph.distances[i, :k].copy()
    embedding = _cached_embedding(str(run_dir), fingerprint)
    distances = np.linalg.norm(embedding - embedding[i], axis=1)
    distances[i] = np.inf
    order = np.argsort(distances, kind="stable")[:k]
    return order.astype(np.int64), distances[order].astype(np.float32)


TRUSTWORTHINESS_K = 10
TRUSTWORTHINESS_SAMPLE = 5_000


def trustworthiness(
    embedding: np.ndarray,
    coords: np.ndarray,
    graph: KnnGraph | None = None,
    k: int = TRUSTWORTHINESS_K,
    sample: int = TRUSTWORTHINESS_SAMPLE,
    seed: int = 0,
) -> float:
    """Trustworthiness (Venna & Kaski) of `coords` (N × c) as a map of `embedding` (N × d), in [0, 1].

    Evaluated for a fixed random sample of at most `sample` query points against all N points, so
    it estimates the full-data score; with sample ≥ N it equals scikit-learn's
    `sklearn.manifold.trustworthiness(embedding, coords, n_neighbors=k)` (up to distance ties).
    High-dimensional ranks come from `graph` (the cached kNN graph) when a map neighbour is among a
    point's graph neighbours; only the rest are ranked by an exact pass over the embedding.
    scikit-learn's function computes the full N × N distance matrix, which is why it is not used.
    """
    from sklearn.neighbors import NearestNeighbors

    x = np.asarray(embedding, dtype=np.float32)
    y = np.asarray(coords, dtype=np.float64)
    n = x.shape[0]
    if not k < n / 2:
        raise ValueError(f"trustworthiness needs k < N/2, got k={k}, N={n}")
    if sample >= n:
        queries = np.arange(n)
    else:
        queries = np.sort(np.random.default_rng(seed).choice(n, size=sample, replace=False))
    map_neighbors = NearestNeighbors(n_neighbors=k + 1).fit(y).kneighbors(y[queries], return_distance=False)
    map_neighbors = _without_query(map_neighbors, queries, k)

    ranks = np.zeros(map_neighbors.shape, dtype=np.int64)
    unknown = np.ones(map_neighbors.shape, dtype=bool)
    if graph is not None:
        # rank of j for query i = 1 + position of j in i's neighbour list, when it is there.
        listed = graph.indices[queries]
        match = listed[:, :, None] == map_neighbors[:, None, :]
        found = match.any(axis=1)
        ranks[found] = (np.argmax(match, axis=1) + 1)[found]
        unknown = ~found
    rows = np.flatnonzero(unknown.any(axis=1))
    x64 = x.astype(np.float64)
    norms = np.einsum("ij,ij->i", x64, x64)
    for start in range(0, len(rows), 256):
        chunk = rows[start : start + 256]
        # rank = 1 + number of other points strictly closer to the query than the neighbour.
        sq = _squared_distances(x64[queries[chunk]], x64, norms)
        sq[np.arange(len(chunk)), queries[chunk]] = np.inf
        target = np.take_along_axis(sq, map_neighbors[chunk], axis=1)
        # Counts instead of sorting rows: one pass per row over all of its unknown entries at once.
        for row, query in enumerate(chunk):
            cols = np.flatnonzero(unknown[query])
            ranks[query, cols] = np.count_nonzero(sq[row][None, :] < target[row, cols][:, None], axis=1) + 1
    penalty = np.clip(ranks - k, 0, None).sum()
    m = len(queries)
    return float(1.0 - 2.0 / (m * k * (2.0 * n - 3.0 * k - 1.0)) * penalty)


def _without_query(neighbors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    own = neighbors == queries[:, None]
    own[~own.any(axis=1), -1] = True
    return neighbors[~own].reshape(-1, k)


def _squared_distances(a: np.ndarray, b: np.ndarray, b_norms: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances between rows of a (m × d) and b (n × d), float64, `b_norms` = ‖b‖².

    Computed in place on the one m × n product (no temporaries of that size): at 256 × 70,000
    each full-size temporary is 143 MB of memory traffic.
    """
    sq = a @ b.T
    sq *= -2.0
    sq += np.einsum("ij,ij->i", a, a)[:, None]
    sq += b_norms[None, :]
    return np.maximum(sq, 0.0, out=sq)
