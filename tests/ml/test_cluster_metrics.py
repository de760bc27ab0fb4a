"""Clustering scores and the comparison of two clusterings."""
from __future__ import annotations

import numpy as np
import pytest

from ml.analysis.cluster_metrics import compare_clusterings, hungarian_accuracy, score_clustering, silhouette


def test_compare_a_clustering_with_itself() -> None:
    a = np.array([0, 0, 1, 1, 2, 2, -1])
    result = compare_clusterings(a, a)
    assert result["ari"] == 1.0 and result["nmi"] == 1.0
    assert result["accuracy"] == pytest.approx(6 / 7)  # the noise point never matches
    assert result["a_ids"] == result["b_ids"] == [-1, 0, 1, 2]
    assert result["contingency"] == [[1, 0, 0, 0], [0, 2, 0, 0], [0, 0, 2, 0], [0, 0, 0, 2]]


def test_renamed_clusters_agree_fully() -> None:
    a = np.array([0, 0, 1, 1, 2, 2])
    b = np.array([5, 5, 3, 3, 9, 9])
    result = compare_clusterings(a, b)
    assert result["ari"] == 1.0 and result["accuracy"] == 1.0
    assert result["b_ids"] == [3, 5, 9]
    assert result["contingency"] == [[0, 2, 0], [2, 0, 0], [0, 0, 2]]


def test_hungarian_accuracy_is_one_to_one() -> None:
    truth = np.array([0, 0, 0, 1, 1, 1, 2, 2])
    merged = np.array([0, 0, 0, 0, 0, 0, 1, 1])  # two classes in one cluster: only one can match
    assert hungarian_accuracy(truth, merged) == pytest.approx(5 / 8)
    assert hungarian_accuracy(truth, np.full(8, -1)) == 0.0


def test_silhouette_needs_two_clusters_and_ignores_noise() -> None:
    x = np.array([[0.0], [0.1], [5.0], [5.1], [100.0]])
    assert silhouette(x, np.array([0, 0, 0, 0, -1])) is None
    with_noise = silhouette(x, np.array([0, 0, 1, 1, -1]))
    assert with_noise == pytest.approx(silhouette(x[:4], np.array([0, 0, 1, 1])))
    assert with_noise > 0.95


def test_score_clustering_with_and_without_labels() -> None:
    x = np.array([[0.0], [0.1], [5.0], [5.1], [100.0]])
    labels = np.array([0, 0, 1, 1, -1])
    unlabelled = score_clustering(x, labels)
    assert unlabelled["n_clusters"] == 2 and unlabelled["noise_fraction"] == pytest.approx(0.2)
    assert unlabelled["ari"] is None and unlabelled["nmi"] is None and unlabelled["accuracy"] is None
    labelled = score_clustering(x, labels, true_labels=np.array([1, 1, 0, 0, 0]))
    assert labelled["accuracy"] == pytest.approx(0.8)
    assert 0 < labelled["ari"] < 1


def test_mismatched_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="same points"):
        compare_clusterings(np.zeros(3), np.zeros(4))
