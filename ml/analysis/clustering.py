"""Registered clusterings: the base class, the registry and kmeans here; dbscan and hdbscan in
ml.analysis.density, agglomerative in ml.analysis.hierarchical, gmm in ml.analysis.mixture, scan in
ml.analysis.scan.

Each is a small estimator: `__init__` stores the raw parameters, `fit(X, knn, n_classes, progress)`
validates them against the class's `params` schema, resolves automatic choices (k, eps, ...) into
`params_` and stores int64 `labels_` (N,) with -1 for noise. `n_classes` (the number of label
classes, when the dataset is labelled) is only used as the default k.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from ml.analysis.cluster_metrics import silhouette
from ml.analysis.neighbors import KnnGraph
from ml.params import ParamError, ParamSchema, ParamSpec
from ml.progress import ProgressCallback, report

# Without labels, k-means picks k in this range by silhouette (sampled, fixed seed).
K_CHOICES = range(2, 11)


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


# Registered in modules of their own, in this order (the order the form lists them in); imported
# last, as they build on the above.
from ml.analysis import density, hierarchical, mixture, scan  # noqa: E402, F401  (register dbscan, hdbscan; agglomerative; gmm; scan)
