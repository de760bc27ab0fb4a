"""SCAN clustering: its loss against hand-computed values, recovery, the head it keeps, the graph it uses, progress, refusals."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits, make_blobs
from sklearn.metrics import adjusted_rand_score

from ml.analysis.cluster_metrics import hungarian_accuracy
from ml.analysis.clustering import make_clustering
from ml.analysis.neighbors import KnnGraph, compute_knn
from ml.analysis.scan_heads import ClusterHeads, scan_losses
from ml.params import ParamError
from ml.progress import Stopped


@pytest.fixture(scope="module")
def blobs() -> tuple[np.ndarray, np.ndarray]:
    x, y = make_blobs(n_samples=300, centers=[[0, 0, 0], [10, 0, 0], [0, 10, 0]], cluster_std=0.6, random_state=0)
    return x.astype(np.float32), y


def test_the_loss_per_head_against_hand_computed_values() -> None:
    # two points, two heads, two clusters; head 0 agrees with the neighbours and is balanced, head 1 is neither
    anchors = torch.tensor([[[0.9, 0.1], [0.5, 0.5]], [[0.2, 0.8], [0.5, 0.5]]])
    neighbours = torch.tensor([[[0.8, 0.2], [1.0, 0.0]], [[0.1, 0.9], [0.0, 1.0]]])
    losses = scan_losses(anchors, neighbours, entropy_weight=2.0)
    consistency_0 = -(math.log(0.9 * 0.8 + 0.1 * 0.2) + math.log(0.2 * 0.1 + 0.8 * 0.9)) / 2
    mean_0 = (0.55, 0.45)
    entropy_0 = -sum(p * math.log(p) for p in mean_0)
    consistency_1 = -(math.log(0.5) + math.log(0.5)) / 2
    entropy_1 = math.log(2)
    assert losses.tolist() == pytest.approx([consistency_0 - 2 * entropy_0, consistency_1 - 2 * entropy_1], rel=1e-6)


def test_heads_give_one_probability_per_head_and_cluster() -> None:
    torch.manual_seed(0)
    heads = ClusterHeads(dims=3, k=4, heads=5)
    probabilities = heads(torch.randn(8, 3))
    assert probabilities.shape == (8, 5, 4)
    assert probabilities.sum(2).detach().numpy() == pytest.approx(np.ones((8, 5)), rel=1e-6)


def test_scan_recovers_blobs_with_k_from_classes_or_by_silhouette(blobs: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = blobs
    model = make_clustering("scan", {"epochs": 20}).fit(x, n_classes=3)
    assert adjusted_rand_score(y, model.labels_) == 1.0
    assert model.params_ == {"n_clusters": 3, "n_neighbors": 20, "entropy_weight": 5.0, "epochs": 20, "heads": 10, "k_source": "classes"}
    unlabelled = make_clustering("scan", {"epochs": 20}).fit(x)
    assert unlabelled.params_["n_clusters"] == 3 and unlabelled.params_["k_source"] == "silhouette"
    assert adjusted_rand_score(y, unlabelled.labels_) == 1.0


def test_scan_beats_kmeans_on_the_digits_pixels() -> None:
    # Points whose neighbours share a digit end up together, where k-means' spheres cut some digits apart.
    x, y = load_digits(return_X_y=True)
    x = (x / 16).astype(np.float32)
    kmeans = hungarian_accuracy(make_clustering("kmeans").fit(x, n_classes=10).labels_, y)
    scan = hungarian_accuracy(make_clustering("scan").fit(x, n_classes=10).labels_, y)
    assert kmeans < 0.80 and scan > 0.82 and scan > kmeans + 0.03


def test_a_seed_gives_the_same_labels_with_the_shared_graph_or_without(blobs: tuple[np.ndarray, np.ndarray]) -> None:
    x = blobs[0] + np.random.default_rng(1).normal(scale=3.0, size=blobs[0].shape).astype(np.float32)  # overlapping groups
    first = make_clustering("scan", {"epochs": 5}, random_state=4).fit(x, n_classes=3).labels_
    again = make_clustering("scan", {"epochs": 5}, random_state=4).fit(x, compute_knn(x), n_classes=3).labels_
    other_seed = make_clustering("scan", {"epochs": 5}, random_state=5).fit(x, n_classes=3).labels_
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other_seed)


def test_the_head_with_the_lowest_loss_labels_the_points(blobs: tuple[np.ndarray, np.ndarray], monkeypatch: pytest.MonkeyPatch) -> None:
    # A constant added to a head's loss changes no gradient, only which head has the lowest loss:
    # the heads train identically, and the labels must follow the head the offsets favour.
    from ml.analysis import scan_heads

    x = blobs[0] + np.random.default_rng(1).normal(scale=3.0, size=blobs[0].shape).astype(np.float32)  # heads disagree
    own_losses = scan_heads.scan_losses

    def labels_when_favoured(head: int) -> np.ndarray:
        offsets = torch.full((4,), 100.0)
        offsets[head] = 0.0
        monkeypatch.setattr(scan_heads, "scan_losses", lambda a, b, w: own_losses(a, b, w) + offsets)
        return make_clustering("scan", {"epochs": 5, "heads": 4}).fit(x, n_classes=3).labels_

    by_head = [labels_when_favoured(head) for head in range(4)]
    assert len({tuple(labels) for labels in by_head}) > 1
    np.testing.assert_array_equal(labels_when_favoured(2), by_head[2])


def test_labelling_in_chunks_gives_the_labels_of_one_pass(blobs: tuple[np.ndarray, np.ndarray], monkeypatch: pytest.MonkeyPatch) -> None:
    from ml.analysis import scan_heads

    whole = make_clustering("scan", {"epochs": 5}).fit(blobs[0], n_classes=3).labels_
    monkeypatch.setattr(scan_heads, "PREDICT_CHUNK", 7)
    np.testing.assert_array_equal(make_clustering("scan", {"epochs": 5}).fit(blobs[0], n_classes=3).labels_, whole)


def test_the_neighbours_come_from_the_graph_it_is_given() -> None:
    # A cloud stretched along y: by its own kNN graph the two clusters split it across y. Given a graph
    # whose neighbours are random points on the same side of x = 0, the clusters follow that side instead.
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(400, 2)) * [1.0, 3.0]).astype(np.float32)
    right = x[:, 0] > 0
    own = compute_knn(x)
    sided = np.stack([rng.choice(np.flatnonzero((right == right[i]) & (np.arange(len(x)) != i)), size=own.k, replace=False)
                      for i in range(len(x))])
    by_geometry = make_clustering("scan", {"epochs": 20}).fit(x, own, n_classes=2).labels_
    by_side = make_clustering("scan", {"epochs": 20}).fit(x, KnnGraph(sided, own.distances), n_classes=2).labels_
    assert adjusted_rand_score(x[:, 1] > 0, by_geometry) > 0.8 and adjusted_rand_score(right, by_geometry) < 0.1
    assert adjusted_rand_score(right, by_side) > 0.9


def test_progress_is_reported_per_epoch_and_can_stop(blobs: tuple[np.ndarray, np.ndarray]) -> None:
    seen: list[float] = []
    make_clustering("scan", {"epochs": 4}).fit(blobs[0], n_classes=3, progress=lambda i, s, m: seen.append(m["fraction"]))
    assert seen == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    with pytest.raises(Stopped):
        make_clustering("scan", {"epochs": 4}).fit(blobs[0], n_classes=3, progress=lambda i, s, m: m["fraction"] >= 0.5)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"n_neighbors": 0}, "n_neighbors must be >= 1"),
        ({"n_neighbors": 91}, "n_neighbors must be <= 90"),
        ({"entropy_weight": -1}, "entropy_weight must be >= 0"),
        ({"heads": 0}, "heads must be >= 1"),
        ({"epochs": 0}, "epochs must be >= 1"),
    ],
)
def test_bad_parameters_are_refused(params: dict, message: str, blobs: tuple[np.ndarray, np.ndarray]) -> None:
    with pytest.raises(ParamError, match=message):
        make_clustering("scan", params).fit(blobs[0])


def test_too_few_points_are_refused() -> None:
    with pytest.raises(ParamError, match="SCAN needs at least 3 points to have neighbours, and this has 2"):
        make_clustering("scan").fit(np.zeros((2, 3), dtype=np.float32), n_classes=2)
