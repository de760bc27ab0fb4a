"""Density-based clusterings, registered as `dbscan` and `hdbscan` (scikit-learn; fast_hdbscan for large HDBSCAN).

Registered from the bottom of `ml.analysis.clustering`, which imports this module.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ml.analysis.clustering import Clustering, register
from ml.analysis.neighbors import KnnGraph
from ml.params import ParamError, ParamSchema, ParamSpec
from ml.progress import ProgressCallback

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
