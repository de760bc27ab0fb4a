"""Registered clusterings: kmeans, dbscan, hdbscan, agglomerative (scikit-learn; fast_hdbscan for large HDBSCAN), and gmm (ml.analysis.mixture).

Each is a small estimator: `__init__` stores the raw parameters, `fit(X, knn, n_classes, progress)`
validates them against the class's `params` schema, resolves automatic choices (k, eps, ...) into
`params_` and stores int64 `labels_` (N,) with -1 for noise. `n_classes` (the number of label
classes, when the dataset is labelled) is only used as the default k.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from ml.analysis.cluster_metrics import silhouette
from ml.analysis.neighbors import KnnGraph
from ml.params import ParamError, ParamSchema, ParamSpec
from ml.progress import ProgressCallback, report

# Without labels, k-means picks k in this range by silhouette (sampled, fixed seed).
K_CHOICES = range(2, 11)
# Agglomerative clustering needs O(N²) memory without a connectivity graph: above this many points
# it is restricted to each point's kNN graph; above MAX it is refused (the merge still costs
# O(N² log N) time in scikit-learn, which would look like a hang).
AGGLOMERATIVE_CONNECTIVITY_ABOVE = 5_000
AGGLOMERATIVE_MAX_POINTS = 30_000
AGGLOMERATIVE_CONNECTIVITY_K = 15

# HDBSCAN: scikit-learn's implementation builds its minimum spanning tree with Prim's algorithm over
# all pairs (O(N² · d) time): 640 s on 70,000 × 10. fast_hdbscan runs the same algorithm (the same
# mutual-reachability MST, condensed tree and excess-of-mass selection) with a parallel Borůvka
# search over a KD-tree, exact for Euclidean data up to 30 dimensions (above that it switches to an
# approximate pynndescent graph, which is not used here). Its numba code compiles once per machine
# (≈1 minute, cached on disk), so small inputs, where scikit-learn takes seconds, stay with it.
HDBSCAN_FAST_MIN_POINTS = 10_000
HDBSCAN_FAST_MAX_DIM = 30
# Limits that refuse hopeless inputs before any work (ParamError naming what to change):
# - scikit-learn's O(N² · d) path (more than 30 dimensions): N² · d at most 70,000² × 64 (a few
#   minutes on a 2-core machine: 20,000 × 32 took 8 s, 70,000 × 32 184 s), e.g. 49,497 points at 128 dimensions;
HDBSCAN_EXACT_MAX_WORK = 70_000**2 * 64
# - either path holds each point's min_samples nearest neighbours (12 bytes each): at most 1e8
#   entries (1.2 GB), e.g. min_samples 1,000 for 100,000 points;
HDBSCAN_MAX_NEIGHBOUR_ENTRIES = 100_000_000
# - the Borůvka path is O(N log N) in few dimensions: at most 2,000,000 points.
HDBSCAN_MAX_POINTS = 2_000_000


class Clustering(ABC):
    """Base class: subclasses declare `name` and `params` and implement `_fit`."""

    name: ClassVar[str]
    label: ClassVar[str]  # for forms and tables
    params: ClassVar[ParamSchema]

    def __init__(self, random_state: int = 0, **params: Any) -> None:
        self.random_state = random_state
        self.given_params = params

    def fit(
        self,
        X: np.ndarray,
        knn: KnnGraph | None = None,
        n_classes: int | None = None,
        progress: ProgressCallback | None = None,
    ) -> Clustering:
        """Cluster X (N × d). Sets `params_` (resolved parameters) and `labels_` (int64 N, -1 = noise).

        `knn` is the kNN graph of exactly these points (used for DBSCAN's eps and agglomerative
        connectivity when given); `n_classes` is the default k for k-means and agglomerative.
        """
        self.params_ = self.params.validate(self.given_params)
        x = np.ascontiguousarray(X, dtype=np.float32)
        self._check(x)
        report(progress, 0, 1, {"fraction": 0.0})
        self.labels_ = np.asarray(self._fit(x, knn, n_classes, progress), dtype=np.int64)
        report(progress, 1, 1, {"fraction": 1.0})
        return self

    def needs_knn(self, n_points: int) -> bool:
        """Whether `fit` would use the shared kNN graph of these points for these parameters."""
        return False

    def fit_predict(self, X: np.ndarray, knn: KnnGraph | None = None, n_classes: int | None = None) -> np.ndarray:
        return self.fit(X, knn, n_classes).labels_

    def _check(self, x: np.ndarray) -> None:
        """Refuse inputs this method cannot handle, before any work (ParamError)."""

    @abstractmethod
    def _fit(self, x: np.ndarray, knn: KnnGraph | None, n_classes: int | None, progress: ProgressCallback | None) -> np.ndarray: ...


CLUSTERINGS: dict[str, type[Clustering]] = {}


def register(cls: type[Clustering]) -> type[Clustering]:
    CLUSTERINGS[cls.name] = cls
    return cls


def make_clustering(method: str, params: dict[str, Any] | None = None, random_state: int = 0) -> Clustering:
    """The registered clustering `method`; ParamError names the known ones for an unknown method."""
    if method not in CLUSTERINGS:
        raise ParamError(f"unknown clustering method {method!r}; allowed: {', '.join(CLUSTERINGS)}")
    return CLUSTERINGS[method](random_state=random_state, **(params or {}))


def n_clusters_spec(help_text: str) -> ParamSpec:
    """The `n_clusters` parameter every k-based clustering shares (empty = chosen automatically)."""
    return ParamSpec("n_clusters", int, None, help_text, minimum=2, maximum=1_000)


class KClustering(Clustering):
    """A clustering into k groups: k as given, else the number of label classes, else the k in
    K_CHOICES whose clustering `_scored` rates highest (recorded as `k_source` = `chosen_by`)."""

    chosen_by: ClassVar[str]  # how k is chosen without labels, e.g. "silhouette"
    none_chosen: ClassVar[str]  # the ParamError when no k got a score

    def _fit(self, x: np.ndarray, knn: KnnGraph | None, n_classes: int | None, progress: ProgressCallback | None) -> np.ndarray:
        k = self.params_["n_clusters"] or n_classes
        self.params_["k_source"] = "given" if self.params_["n_clusters"] else "classes"
        if k is None:
            k, labels = self._best_k(x, progress)
            self.params_["k_source"] = self.chosen_by
        else:
            labels = self._cluster(x, k)
        self.params_["n_clusters"] = int(k)
        return labels

    def _best_k(self, x: np.ndarray, progress: ProgressCallback | None) -> tuple[int, np.ndarray]:
        best: tuple[float, int, np.ndarray] | None = None
        choices = [k for k in K_CHOICES if k < x.shape[0]]
        for step, k in enumerate(choices):
            labels, score = self._scored(x, k)
            if score is not None and (best is None or score > best[0]):
                best = (score, k, labels)
            report(progress, step + 1, len(choices), {"fraction": (step + 1) / len(choices)})
        if best is None:
            raise ParamError(self.none_chosen)
        return best[1], best[2]

    @abstractmethod
    def _cluster(self, x: np.ndarray, k: int) -> np.ndarray:
        """Labels (N,) of x in k groups."""

    @abstractmethod
    def _scored(self, x: np.ndarray, k: int) -> tuple[np.ndarray, float | None]:
        """Labels of x in k groups and their score, higher is better (None: cannot be scored)."""


@register
class KMeansClustering(KClustering):
    name = "kmeans"
    label = "k-means"
    params = ParamSchema(
        (
            n_clusters_spec("k; empty = number of classes when labelled, else the best silhouette for k = 2..10"),
            ParamSpec("n_init", int, 10, "restarts; the best inertia is kept", minimum=1, maximum=100),
        )
    )
    chosen_by = "silhouette"
    none_chosen = "k-means could not choose k: every k gave a single cluster"

    # scikit-learn's k-means splits work into chunks of 256 points per thread: below this many points
    # the threads only wait on each other (50× slower on a busy machine), so one thread is used.
    ONE_THREAD_BELOW = 5_000

    def _cluster(self, x: np.ndarray, k: int) -> np.ndarray:
        from sklearn.cluster import KMeans
        from threadpoolctl import threadpool_limits

        model = KMeans(n_clusters=min(k, x.shape[0]), n_init=self.params_["n_init"], random_state=self.random_state)
        with threadpool_limits(1 if x.shape[0] < self.ONE_THREAD_BELOW else None):
            return model.fit_predict(x)

    def _scored(self, x: np.ndarray, k: int) -> tuple[np.ndarray, float | None]:
        labels = self._cluster(x, k)
        return labels, silhouette(x, labels, seed=self.random_state)


def knee_eps(k_distances: np.ndarray) -> float:
    """The knee of the sorted k-distance curve: the point farthest below the chord from first to last.

    Written by hand (the "kneedle" construction in a few lines) rather than adding a dependency.
    """
    curve = np.sort(np.asarray(k_distances, dtype=np.float64))
    n = curve.size
    if n < 3 or curve[-1] == curve[0]:
        return float(curve[-1]) if n else 0.0
    t = np.linspace(0.0, 1.0, n)
    normalised = (curve - curve[0]) / (curve[-1] - curve[0])
    return float(curve[int(np.argmax(t - normalised))])


@register
class DBSCANClustering(Clustering):
    name = "dbscan"
    label = "DBSCAN"
    params = ParamSchema(
        (
            ParamSpec("eps", float, None, "neighbourhood radius; empty = the knee of the k-distance curve", minimum=0.0, exclusive_minimum=True),
            ParamSpec("min_samples", int, 5, "points (itself included) within eps that make a core point", minimum=2, maximum=1_000),
        )
    )

    def needs_knn(self, n_points: int) -> bool:
        return self.params.validate(self.given_params)["eps"] is None

    def _fit(self, x: np.ndarray, knn: KnnGraph | None, n_classes: int | None, progress: ProgressCallback | None) -> np.ndarray:
        from sklearn.cluster import DBSCAN

        p = self.params_
        if p["eps"] is None:
            p["eps"] = self._suggest_eps(x, knn, p["min_samples"])
            p["eps_source"] = "knee"
        else:
            p["eps_source"] = "given"
        return DBSCAN(eps=p["eps"], min_samples=p["min_samples"], n_jobs=-1).fit_predict(x)

    @staticmethod
    def _suggest_eps(x: np.ndarray, knn: KnnGraph | None, min_samples: int) -> float:
        # scikit-learn counts the point itself in min_samples: its (min_samples-1)-th other neighbour.
        j = min(min_samples - 1, x.shape[0] - 1)
        if knn is not None and knn.k >= j:
            return knee_eps(knn.distances[:, j - 1])
        from sklearn.neighbors import NearestNeighbors

        distances, _ = NearestNeighbors(n_neighbors=j + 1, n_jobs=-1).fit(x).kneighbors(x)
        return knee_eps(distances[:, j])


@register
class HDBSCANClustering(Clustering):
    """HDBSCAN as scikit-learn defines it (min_samples counts the point itself), by two implementations.

    `params_["implementation"]` records which ran: "scikit-learn" below `HDBSCAN_FAST_MIN_POINTS`
    points or above `HDBSCAN_FAST_MAX_DIM` dimensions, else "fast_hdbscan". Both give the same
    labels up to ties between equal mutual-reachability distances (tests/ml/test_clustering.py).
    """

    name = "hdbscan"
    label = "HDBSCAN"
    params = ParamSchema(
        (
            ParamSpec("min_cluster_size", int, None, "smallest group called a cluster; empty = max(5, N / 200)", minimum=2),
            ParamSpec("min_samples", int, None, "density smoothing; empty = min_cluster_size", minimum=1),
        )
    )

    def _check(self, x: np.ndarray) -> None:
        n, d = x.shape
        p = self._resolve(n)
        if n > HDBSCAN_MAX_POINTS:
            raise ParamError(
                f"hdbscan is limited to {HDBSCAN_MAX_POINTS:,} points and this has {n:,}; "
                "use kmeans, or cluster a projection of a subset"
            )
        if n * min(p["min_samples"], n) > HDBSCAN_MAX_NEIGHBOUR_ENTRIES:
            most = max(1, HDBSCAN_MAX_NEIGHBOUR_ENTRIES // n)
            raise ParamError(
                f"min_samples = {p['min_samples']:,} with {n:,} points needs more than {HDBSCAN_MAX_NEIGHBOUR_ENTRIES:,} "
                f"neighbour entries; set min_samples to at most {most:,}"
            )
        if self._implementation(n, d, p["min_samples"]) == "scikit-learn" and n * n * d > HDBSCAN_EXACT_MAX_WORK:
            most = int(math.sqrt(HDBSCAN_EXACT_MAX_WORK / d))
            raise ParamError(
                f"hdbscan on {d} dimensions is limited to {most:,} points and this has {n:,} (above "
                f"{HDBSCAN_FAST_MAX_DIM} dimensions only scikit-learn's O(N²·d) algorithm is exact, and it would run for hours); "
                f"set on to a projection with at most {HDBSCAN_FAST_MAX_DIM} components (e.g. UMAP, n_components 10)"
            )

    def _resolve(self, n: int) -> dict[str, Any]:
        """params_ with the automatic choices made for N points."""
        p = self.params_
        p["min_cluster_size"] = p["min_cluster_size"] or max(5, n // 200)
        p["min_samples"] = p["min_samples"] or p["min_cluster_size"]
        return p

    @staticmethod
    def _implementation(n: int, d: int, min_samples: int) -> str:
        return "fast_hdbscan" if n >= HDBSCAN_FAST_MIN_POINTS and d <= HDBSCAN_FAST_MAX_DIM else "scikit-learn"

    def _fit(self, x: np.ndarray, knn: KnnGraph | None, n_classes: int | None, progress: ProgressCallback | None) -> np.ndarray:
        n, d = x.shape
        p = self._resolve(n)
        implementation = self._implementation(n, d, p["min_samples"])
        if implementation == "fast_hdbscan":
            import fast_hdbscan

            # fast_hdbscan's core distance is that of the min_samples-th neighbour besides the point
            # itself, scikit-learn's counts the point: one less gives scikit-learn's. min_samples 2
            # (the nearest other point) and 1 (the point) both give single linkage: an MST edge is
            # never shorter than either end's nearest-neighbour distance. float64, as scikit-learn
            # computes, so that near-equal distances are ordered alike.
            model = fast_hdbscan.HDBSCAN(min_cluster_size=p["min_cluster_size"], min_samples=max(1, p["min_samples"] - 1))
            labels = model.fit_predict(x.astype(np.float64))
        else:
            from sklearn.cluster import HDBSCAN

            labels = HDBSCAN(min_cluster_size=p["min_cluster_size"], min_samples=p["min_samples"], n_jobs=-1, copy=True).fit_predict(x)
        p["implementation"] = implementation
        return labels


@register
class AgglomerativeClustering(Clustering):
    name = "agglomerative"
    label = "Agglomerative (hierarchical)"
    params = ParamSchema(
        (
            n_clusters_spec("k; empty = number of classes when labelled, else 10"),
            ParamSpec("linkage", str, "ward", "merge rule", choices=("ward", "average", "complete", "single")),
        )
    )
    DEFAULT_K = 10

    def _check(self, x: np.ndarray) -> None:
        limit = AGGLOMERATIVE_MAX_POINTS
        if x.shape[0] > limit:
            raise ParamError(
                f"agglomerative clustering is limited to {limit:,} points and this has {x.shape[0]:,}; "
                "use kmeans or hdbscan, or cluster a projection of a subset"
            )

    def needs_knn(self, n_points: int) -> bool:
        return n_points > AGGLOMERATIVE_CONNECTIVITY_ABOVE

    def _fit(self, x: np.ndarray, knn: KnnGraph | None, n_classes: int | None, progress: ProgressCallback | None) -> np.ndarray:
        from sklearn.cluster import AgglomerativeClustering as SklearnAgglomerative

        p = self.params_
        p["k_source"] = "given" if p["n_clusters"] else ("classes" if n_classes else "default")
        p["n_clusters"] = min(p["n_clusters"] or n_classes or self.DEFAULT_K, x.shape[0])
        connectivity = None
        p["connectivity"] = None
        if x.shape[0] > AGGLOMERATIVE_CONNECTIVITY_ABOVE:
            connectivity = _connectivity(x, knn, AGGLOMERATIVE_CONNECTIVITY_K)
            p["connectivity"] = f"knn-{AGGLOMERATIVE_CONNECTIVITY_K}"
        model = SklearnAgglomerative(n_clusters=p["n_clusters"], linkage=p["linkage"], connectivity=connectivity)
        return model.fit_predict(x)


def _connectivity(x: np.ndarray, knn: KnnGraph | None, k: int) -> Any:
    """Symmetric sparse N × N kNN connectivity, from the shared graph when it matches these points."""
    import scipy.sparse as sp

    n = x.shape[0]
    if knn is not None and knn.n == n and knn.k >= k:
        indices = knn.indices[:, :k]
    else:
        from sklearn.neighbors import NearestNeighbors

        indices = NearestNeighbors(n_neighbors=k + 1, n_jobs=-1).fit(x).kneighbors(x, return_distance=False)[:, 1:]
    rows = np.repeat(np.arange(n), indices.shape[1])
    graph = sp.csr_matrix((np.ones(rows.size), (rows, indices.ravel())), shape=(n, n))
    return graph.maximum(graph.T)


# Registered in a module of its own (this one is long enough); imported last, as it builds on the above.
from ml.analysis import mixture  # noqa: E402, F401  (registers gmm)
