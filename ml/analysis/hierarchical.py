"""Agglomerative (hierarchical) clustering, registered as `agglomerative` (scikit-learn), restricted
to the kNN graph on large inputs.

Registered from the bottom of `ml.analysis.clustering`, which imports this module.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ml.analysis.clustering import Clustering, n_clusters_spec, register
from ml.analysis.neighbors import KnnGraph
from ml.params import ParamError, ParamSchema, ParamSpec
from ml.progress import ProgressCallback

# Agglomerative clustering needs O(N²) memory without a connectivity graph: above this many points
# it is restricted to each point's kNN graph; above MAX it is refused (the merge still costs
# O(N² log N) time in scikit-learn, which would look like a hang).
AGGLOMERATIVE_CONNECTIVITY_ABOVE = 5_000
AGGLOMERATIVE_MAX_POINTS = 30_000
AGGLOMERATIVE_CONNECTIVITY_K = 15


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
