"""Clustering scores: against labels (ARI, NMI, Hungarian-matched accuracy), silhouette, and the
comparison of two clusterings of the same points.

Noise (-1) counts as one more group for ARI and NMI (scikit-learn's convention) but is never
matched to a class or cluster by the Hungarian accuracy: noise points always count as misses.
"""
from __future__ import annotations

from typing import Any

import numpy as np

NOISE = -1
SILHOUETTE_SAMPLE = 5_000


def hungarian_accuracy(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of points whose group in `a` maps to their group in `b` under the best one-to-one
    matching of groups (scipy's linear_sum_assignment); noise in either never matches. Shapes (N,)."""
    from scipy.optimize import linear_sum_assignment

    table, a_ids, b_ids = _contingency(a, b)
    table = table[np.ix_(a_ids != NOISE, b_ids != NOISE)]
    if table.size == 0:
        return 0.0
    rows, cols = linear_sum_assignment(table, maximize=True)
    return float(table[rows, cols].sum() / len(a))


def _contingency(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Counts (len(a_ids) × len(b_ids), int64) of points in each pair of groups, with the sorted ids."""
    from sklearn.metrics.cluster import contingency_matrix

    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"two labelings of the same points are needed, got shapes {a.shape} and {b.shape}")
    table = contingency_matrix(a, b).astype(np.int64)
    return table, np.unique(a), np.unique(b)


def agreement(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """ARI, NMI and Hungarian accuracy of two labelings (N,) of the same points."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    return {
        "ari": float(adjusted_rand_score(a, b)),
        "nmi": float(normalized_mutual_info_score(a, b)),
        "accuracy": hungarian_accuracy(a, b),
    }


def compare_clusterings(a: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    """ari, nmi, accuracy (Hungarian), contingency (list of lists, rows = a_ids, columns = b_ids),
    a_ids and b_ids (sorted group ids, -1 = noise) of two clusterings (N,) of the same points."""
    table, a_ids, b_ids = _contingency(a, b)
    return {
        **agreement(a, b),
        "contingency": table.tolist(),
        "a_ids": [int(i) for i in a_ids],
        "b_ids": [int(i) for i in b_ids],
    }


def silhouette(x: np.ndarray, labels: np.ndarray, sample: int = SILHOUETTE_SAMPLE, seed: int = 0) -> float | None:
    """Silhouette of the non-noise points of x (N × d), on a fixed random sample of at most `sample`
    points; None when fewer than 2 clusters (or fewer than 3 points) remain."""
    from sklearn.metrics import silhouette_score

    labels = np.asarray(labels)
    keep = labels != NOISE
    x, labels = np.asarray(x)[keep], labels[keep]
    n_groups = len(np.unique(labels))
    if n_groups < 2 or n_groups >= len(labels):
        return None
    size = min(sample, len(labels))
    return float(silhouette_score(x, labels, sample_size=size if size < len(labels) else None, random_state=seed))


def score_clustering(
    x: np.ndarray, labels: np.ndarray, true_labels: np.ndarray | None = None, seed: int = 0
) -> dict[str, Any]:
    """n_clusters, noise_fraction, silhouette (on x, N × d) and, with true labels, ari, nmi and
    accuracy (null without)."""
    labels = np.asarray(labels)
    scores: dict[str, Any] = {
        "n_clusters": int(len(np.unique(labels[labels != NOISE]))),
        "noise_fraction": float(np.mean(labels == NOISE)) if len(labels) else 0.0,
        "silhouette": silhouette(x, labels, seed=seed),
        "ari": None,
        "nmi": None,
        "accuracy": None,
    }
    if true_labels is not None:
        scores.update(agreement(true_labels, labels))
    return scores
