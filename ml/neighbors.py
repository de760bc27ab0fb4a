"""One k-nearest-neighbour graph per embedding, computed once and shared.

The graph is Euclidean, excludes each point itself, and keeps `KNN_K` = 90 neighbours: that is
3 × perplexity 30, the neighbourhood openTSNE uses for its default perplexity, and it covers
UMAP's `n_neighbors` up to 90, DBSCAN's k-distance curve, the neighbours endpoint and
trustworthiness (k = 10). Small embeddings get exact neighbours (scikit-learn, brute force on all
cores); large ones get approximate neighbours from pynndescent (the index UMAP itself uses).

The graph is cached in the run directory as `knn.npz` (written atomically) together with a
fingerprint of `embeddings.npy` (shape, size, modification time), so a retrained embedding is never
answered with a stale graph.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ml import artifacts

KNN_FILE = "knn.npz"
KNN_K = 90
# Above this many points exact search (O(N²·d)) is slower than pynndescent's approximate search.
EXACT_MAX_POINTS = 20_000


@dataclass(frozen=True)
class KnnGraph:
    """`indices` int64 N × k and `distances` float32 N × k (ascending), each row without the point itself."""

    indices: np.ndarray
    distances: np.ndarray
    exact: bool

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
        return KnnGraph(self.indices[:, :k], self.distances[:, :k], self.exact)

    def with_self(self) -> tuple[np.ndarray, np.ndarray]:
        """Indices and distances N × (k+1) with each point first at distance 0 (UMAP's layout)."""
        own = np.arange(self.n, dtype=np.int64)[:, None]
        indices = np.hstack([own, self.indices])
        distances = np.hstack([np.zeros((self.n, 1), dtype=np.float32), self.distances])
        return indices, distances


def compute_knn(embedding: np.ndarray, k: int = KNN_K, seed: int = 0) -> KnnGraph:
    """k nearest neighbours (Euclidean) of every row of `embedding` (N × d), excluding the row itself."""
    x = np.ascontiguousarray(embedding, dtype=np.float32)
    n = x.shape[0]
    k = min(k, n - 1)
    if k < 1:
        raise ValueError(f"need at least 2 points for a neighbour graph, got {n}")
    if n <= EXACT_MAX_POINTS:
        from sklearn.neighbors import NearestNeighbors

        distances, indices = NearestNeighbors(n_neighbors=k + 1, algorithm="brute", n_jobs=-1).fit(x).kneighbors(x)
        exact = True
    else:
        from pynndescent import NNDescent

        index = NNDescent(x, n_neighbors=k + 1, random_state=seed, n_jobs=-1, low_memory=True)
        indices, distances = index.neighbor_graph
        exact = False
    indices, distances = _drop_self(indices.astype(np.int64), distances.astype(np.float32), k)
    return KnnGraph(indices, distances, exact)


def _drop_self(indices: np.ndarray, distances: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Remove each row's own index (usually first, but not always when points are duplicated)."""
    own = indices == np.arange(indices.shape[0])[:, None]
    # Rows that do not contain themselves (duplicates pushed them out) lose their last neighbour instead.
    missing = ~own.any(axis=1)
    own[missing, -1] = True
    keep = ~own
    return indices[keep].reshape(-1, k), np.maximum(distances[keep].reshape(-1, k), 0.0)


def _fingerprint(run_dir: Path) -> np.ndarray:
    stat = (Path(run_dir) / artifacts.EMBEDDINGS).stat()
    return np.array([stat.st_size, stat.st_mtime_ns], dtype=np.int64)


def load_embedding(run_dir: Path) -> np.ndarray:
    """The run's embeddings.npy as float32 N × d."""
    return np.load(Path(run_dir) / artifacts.EMBEDDINGS).astype(np.float32, copy=False)


def load_or_compute_knn(run_dir: Path, k: int = KNN_K, seed: int = 0) -> KnnGraph:
    """The run's cached kNN graph with at least min(k, N-1) neighbours, computing and saving it if needed."""
    run_dir = Path(run_dir)
    cached = _read_cache(run_dir)
    if cached is not None and cached.k >= min(k, cached.n - 1):
        return cached
    graph = compute_knn(load_embedding(run_dir), max(k, KNN_K), seed=seed)
    artifacts.write_npz(
        run_dir / KNN_FILE,
        indices=graph.indices,
        distances=graph.distances,
        exact=np.array(graph.exact),
        fingerprint=_fingerprint(run_dir),
    )
    return graph


def _read_cache(run_dir: Path) -> KnnGraph | None:
    path = run_dir / KNN_FILE
    if not path.exists():
        return None
    with np.load(path) as stored:
        if not np.array_equal(stored["fingerprint"], _fingerprint(run_dir)):
            return None
        return KnnGraph(stored["indices"], stored["distances"], bool(stored["exact"]))


# The server asks for one point's neighbours per click: keep the arrays of recent runs in memory,
# keyed by the files' sizes and modification times (a stat per call, no read), so that a
# recomputed graph or a retrained embedding is picked up.
_lock = threading.Lock()


@lru_cache(maxsize=8)
def _cached_graph(run_dir: str, knn_mtime_ns: int, embedding_fingerprint: tuple[int, int]) -> KnnGraph:
    return load_or_compute_knn(Path(run_dir))


@lru_cache(maxsize=4)
def _cached_embedding(run_dir: str, embedding_fingerprint: tuple[int, int]) -> np.ndarray:
    return load_embedding(Path(run_dir))


def neighbors_of(run_dir: Path, i: int, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Indices (int64, k) and Euclidean distances (float32, k) of point `i`'s nearest neighbours.

    Served from the cached graph when k ≤ its width; wider requests are answered exactly from the
    embedding. Raises IndexError for a point outside the embedding and ValueError for k < 1.
    """
    run_dir = Path(run_dir).resolve()
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    knn_path = run_dir / KNN_FILE
    fingerprint = tuple(int(v) for v in _fingerprint(run_dir))
    with _lock:
        knn_mtime = knn_path.stat().st_mtime_ns if knn_path.exists() else 0
        graph = _cached_graph(str(run_dir), knn_mtime, fingerprint)
    if not 0 <= i < graph.n:
        raise IndexError(f"point {i} is outside the embedding (0..{graph.n - 1})")
    k = min(k, graph.n - 1)
    if k <= graph.k:
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
    for start in range(0, len(rows), 256):
        chunk = rows[start : start + 256]
        # rank = 1 + number of other points strictly closer to the query than the neighbour.
        sq = _squared_distances(x[queries[chunk]], x)
        sq[np.arange(len(chunk)), queries[chunk]] = np.inf
        target = np.take_along_axis(sq, map_neighbors[chunk], axis=1)
        sq.sort(axis=1)
        exact = np.stack([np.searchsorted(row, t, side="left") for row, t in zip(sq, target)]) + 1
        ranks[chunk] = np.where(unknown[chunk], exact, ranks[chunk])
    penalty = np.clip(ranks - k, 0, None).sum()
    m = len(queries)
    return float(1.0 - 2.0 / (m * k * (2.0 * n - 3.0 * k - 1.0)) * penalty)


def _without_query(neighbors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    own = neighbors == queries[:, None]
    own[~own.any(axis=1), -1] = True
    return neighbors[~own].reshape(-1, k)


def _squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances (float64) between rows of a (m × d) and b (n × d)."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    sq = (a64**2).sum(1)[:, None] - 2.0 * a64 @ b64.T + (b64**2).sum(1)[None, :]
    return np.maximum(sq, 0.0)
