"""Embedding quality against labels: k-nearest-neighbour (Euclidean and cosine) and linear-probe accuracy, and the split."""
from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ml.ssl_health import normalised

TEST_FRACTION = 0.2


def knn_accuracy(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray, k: int = 5) -> float:
    """Accuracy of a k-nearest-neighbour vote (Euclidean) fitted on (train_x, train_y), scored on the test part.

    train_x: (n_train, d), test_x: (n_test, d); labels int (n,).
    """
    classifier = KNeighborsClassifier(n_neighbors=min(k, len(train_x)), n_jobs=1)
    classifier.fit(train_x, train_y)
    return float(classifier.score(test_x, test_y))


def cosine_knn_accuracy(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray, k: int = 5) -> float:
    """`knn_accuracy` by cosine similarity: the same vote on L2-normalised rows (Euclidean distance
    between unit vectors is monotone in their cosine), the geometry the contrastive losses train."""
    return knn_accuracy(normalised(train_x), train_y, normalised(test_x), test_y, k=k)


def linear_probe_accuracy(
    train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray, max_iter: int = 100, seed: int = 0
) -> float:
    """Accuracy of a logistic regression on standardised embeddings (fit on train, score on test).

    Shapes as in `knn_accuracy`. Iterations are bounded; an unconverged fit is still a fair probe.
    """
    if len(np.unique(train_y)) < 2:
        return float(np.mean(test_y == train_y[0]))
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=max_iter, random_state=seed))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        probe.fit(train_x, train_y)
    return float(probe.score(test_x, test_y))


def evaluation_split(labels: np.ndarray, train_mask: np.ndarray | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train_idx, test_idx), int64 indices into the dataset.

    With an official split (`train_mask`), its train and test parts; otherwise a fixed, seeded,
    stratified 80/20 split (falling back to an unstratified one when a class has a single image).
    """
    if train_mask is not None:
        return np.flatnonzero(train_mask).astype(np.int64), np.flatnonzero(~train_mask).astype(np.int64)
    indices = np.arange(len(labels), dtype=np.int64)
    _, counts = np.unique(labels, return_counts=True)
    stratify = labels if counts.min() >= 2 and len(counts) <= TEST_FRACTION * len(labels) else None
    train_idx, test_idx = train_test_split(indices, test_size=TEST_FRACTION, random_state=seed, stratify=stratify)
    return np.sort(train_idx), np.sort(test_idx)
