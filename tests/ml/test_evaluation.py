"""kNN / linear-probe accuracy and the evaluation split."""
from __future__ import annotations

import numpy as np
import pytest

from ml.evaluation import cosine_knn_accuracy, evaluation_split, knn_accuracy, linear_probe_accuracy


def blobs(seed: int, n: int = 60, spread: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    centres = np.array([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0]])
    return centres[labels] + rng.normal(scale=spread, size=(n, 2)), labels


def test_separable_blobs_score_one_and_shuffled_labels_score_low() -> None:
    train_x, train_y = blobs(0)
    test_x, test_y = blobs(1)
    assert knn_accuracy(train_x, train_y, test_x, test_y, k=5) == 1.0
    assert linear_probe_accuracy(train_x, train_y, test_x, test_y) == 1.0
    shuffled = np.random.default_rng(2).permutation(train_y)
    assert knn_accuracy(train_x, shuffled, test_x, test_y, k=5) < 0.6


def test_knn_accuracy_counts_the_majority_of_k_neighbours() -> None:
    train_x = np.array([[0.0], [1.0], [2.0], [10.0], [11.0]])
    train_y = np.array([0, 0, 1, 1, 1])
    test_x = np.array([[0.5], [10.5], [1.9]])
    # k=3: 0.5 → {0,1,2} labels 0,0,1 → 0 ✓; 10.5 → 1 ✓; 1.9 → {2,1,0} → 0 ✗ (true 1)
    assert knn_accuracy(train_x, train_y, test_x, np.array([0, 1, 1]), k=3) == pytest.approx(2 / 3)


def test_cosine_knn_votes_by_direction_not_length() -> None:
    # Class 0 trains on long vectors along one direction, class 1 on short ones along another. A short
    # test vector of class 0 is nearer (Euclidean) to the short class-1 vectors; by cosine, to its own.
    a, b = np.array([1.0, 0.3]), np.array([0.3, 1.0])
    train_x = np.vstack([np.linspace(5, 10, 10)[:, None] * a, np.linspace(0.1, 1, 10)[:, None] * b])
    train_y = np.repeat([0, 1], 10)
    test_x = np.vstack([np.linspace(0.2, 0.8, 4)[:, None] * a, np.linspace(0.2, 0.8, 4)[:, None] * b])
    test_y = np.repeat([0, 1], 4)
    assert knn_accuracy(train_x, train_y, test_x, test_y, k=5) == 0.5
    assert cosine_knn_accuracy(train_x, train_y, test_x, test_y, k=5) == 1.0
    assert cosine_knn_accuracy(train_x * 7.0, train_y, test_x, test_y, k=5) == 1.0  # lengths do not matter


def test_official_split_is_used_as_is() -> None:
    labels = np.array([0, 1, 0, 1, 0, 1])
    mask = np.array([True, True, True, True, False, False])
    train_idx, test_idx = evaluation_split(labels, mask, seed=0)
    assert train_idx.tolist() == [0, 1, 2, 3] and test_idx.tolist() == [4, 5]


def test_stratified_split_is_80_20_fixed_by_seed_and_disjoint() -> None:
    labels = np.repeat(np.arange(4), 25)
    train_idx, test_idx = evaluation_split(labels, None, seed=3)
    assert len(train_idx) == 80 and len(test_idx) == 20
    assert set(train_idx).isdisjoint(test_idx) and len(set(train_idx) | set(test_idx)) == 100
    assert np.bincount(labels[test_idx]).tolist() == [5, 5, 5, 5]
    again, _ = evaluation_split(labels, None, seed=3)
    other, _ = evaluation_split(labels, None, seed=4)
    assert np.array_equal(train_idx, again) and not np.array_equal(train_idx, other)


def test_split_falls_back_when_a_class_has_one_image() -> None:
    labels = np.array([0] * 9 + [1])
    train_idx, test_idx = evaluation_split(labels, None, seed=0)
    assert len(train_idx) == 8 and len(test_idx) == 2
