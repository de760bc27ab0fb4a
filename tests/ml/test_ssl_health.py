"""SSL health metrics on constructed embeddings, and their per-epoch record during contrastive training."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from ml import artifacts, ssl_health
from ml.datasets import ImageDataset, load_dataset


def test_identical_embeddings_have_zero_std_zero_uniformity_and_are_called_collapsed() -> None:
    same = np.tile(np.array([[3.0, -1.0, 0.5, 2.0]]), (50, 1))
    assert ssl_health.embedding_std(same) == pytest.approx(0.0, abs=1e-12)
    assert ssl_health.uniformity(same) == pytest.approx(0.0, abs=1e-12)
    assert ssl_health.collapse_verdict(ssl_health.embedding_std(same), 4) == "collapsed"
    row = ssl_health.health_row(same, same, 2 * same, labels=None)
    assert row["verdict"] == "collapsed" and row["embedding_std_ratio"] == pytest.approx(0.0, abs=1e-12)
    assert row["alignment"] == pytest.approx(0.0, abs=1e-12)  # scaling a view does not move its normalised embedding
    assert row["monitor_knn_accuracy"] is None


def test_non_finite_embeddings_are_a_divergence_not_numbers() -> None:
    x = np.random.default_rng(0).standard_normal((20, 4))
    broken = x.copy()
    broken[3, 1] = np.nan
    row = ssl_health.health_row(broken, x, x, labels=np.zeros(20, dtype=int))
    assert row == {"alignment": None, "uniformity": None, "embedding_std": None, "embedding_std_ratio": None,
                   "verdict": "diverged", "monitor_knn_accuracy": None}


def test_alignment_is_zero_for_identical_pairs_and_four_for_opposite_ones() -> None:
    x = np.random.default_rng(0).standard_normal((100, 8))
    assert ssl_health.alignment(x, x) == pytest.approx(0.0, abs=1e-12)
    assert ssl_health.alignment(x, -x) == pytest.approx(4.0)
    assert ssl_health.alignment(x, -x, alpha=1.0) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="same shape"):
        ssl_health.alignment(x, x[:10])


@pytest.mark.parametrize("dim", [3, 16, 64])
def test_isotropic_gaussian_is_uniform_on_the_sphere(dim: int) -> None:
    x = np.random.default_rng(dim).standard_normal((3000, dim))
    # Normalised isotropic Gaussians are uniform on S^{d-1}: the closed-form uniformity and std 1/√d.
    assert ssl_health.uniformity(x) == pytest.approx(ssl_health.uniform_sphere_uniformity(dim), abs=0.01)
    assert ssl_health.embedding_std(x) == pytest.approx(1 / math.sqrt(dim), rel=0.01)
    assert ssl_health.collapse_verdict(ssl_health.embedding_std(x), dim) == "healthy"


def test_the_closed_form_uniformity_matches_known_values() -> None:
    # d = 3: x·y is uniform on [-1, 1], so E exp(-2‖x-y‖²) = e^{-4} sinh(4) / 4.
    assert ssl_health.uniform_sphere_uniformity(3) == pytest.approx(-4 + math.log(math.sinh(4) / 4), abs=1e-12)
    # d = 1: x, y are ±1; ‖x-y‖² is 0 or 4 with equal odds.
    assert ssl_health.uniform_sphere_uniformity(1) == pytest.approx(math.log((1 + math.exp(-8)) / 2), abs=1e-12)
    values = [ssl_health.uniform_sphere_uniformity(d) for d in (2, 8, 32, 512)]
    assert values == sorted(values, reverse=True) and -4 < values[-1] < -3.95  # → −2t = −4 as d grows


def test_embeddings_filling_few_dimensions_are_a_partial_collapse() -> None:
    rng = np.random.default_rng(1)
    circle = np.zeros((4000, 32))
    circle[:, :2] = rng.standard_normal((4000, 2))  # k = 2 of d = 32 dimensions: std × √d = √(k/d) = 0.25
    assert ssl_health.embedding_std(circle) * math.sqrt(32) == pytest.approx(0.25, rel=0.02)
    line = np.zeros((2000, 32))
    line[:, 0] = rng.standard_normal(2000)  # ±e1: √(1/32) = 0.18
    assert ssl_health.collapse_verdict(ssl_health.embedding_std(line), 32) == "partial"
    cone = np.zeros((2000, 32))
    cone[:, 0] = 1.0
    cone[:, 1:] = 0.01 * rng.standard_normal((2000, 31))  # a narrow cone: mean cosine ≈ 1 − 31 · 0.01² ≈ 0.997
    assert ssl_health.collapse_verdict(ssl_health.embedding_std(cone), 32) == "collapsed"
    eight = np.zeros((2000, 32))
    eight[:, :8] = rng.standard_normal((2000, 8))  # √(8/32) = 0.5
    assert ssl_health.collapse_verdict(ssl_health.embedding_std(eight), 32) == "healthy"


def _loo_knn_reference(x: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Leave-one-out kNN by brute force: distances, self excluded, majority vote with ties to the smaller label."""
    distances = ((x[:, None, :] - x[None, :, :]) ** 2).sum(axis=2)
    np.fill_diagonal(distances, np.inf)
    hits = 0
    for i in range(len(x)):
        nearest = np.argsort(distances[i], kind="stable")[:k]
        hits += int(np.bincount(labels[nearest], minlength=labels.max() + 1).argmax() == labels[i])
    return hits / len(x)


def test_monitor_knn_is_leave_one_out_and_matches_a_brute_force_reference() -> None:
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 4, size=200)
    x = rng.standard_normal((200, 6)) + 1.5 * np.eye(6)[labels]
    assert ssl_health.monitor_knn_accuracy(x, labels) == pytest.approx(_loo_knn_reference(x, labels, 5))
    # Well separated classes: every point's neighbours (never itself) share its label.
    separated = np.repeat(np.arange(3), 10)
    points = 100.0 * np.eye(3)[separated] + rng.standard_normal((30, 3))
    assert ssl_health.monitor_knn_accuracy(points, separated + 7) == 1.0
    # A point that is its class's only member cannot be classified by its own vote.
    assert ssl_health.monitor_knn_accuracy(np.array([[0.0], [0.1], [0.2]]), np.array([0, 0, 1]), k=2) == pytest.approx(2 / 3)


def test_monitor_indices_are_a_fixed_sorted_subset_of_the_candidates() -> None:
    candidates = np.arange(100, 3000, 3)
    chosen = ssl_health.monitor_indices(5000, candidates, seed=4)
    assert len(chosen) == ssl_health.MONITOR_SIZE and np.all(np.diff(chosen) > 0) and np.isin(chosen, candidates).all()
    assert np.array_equal(chosen, ssl_health.monitor_indices(5000, candidates, seed=4))
    assert not np.array_equal(chosen, ssl_health.monitor_indices(5000, candidates, seed=5))
    assert np.array_equal(ssl_health.monitor_indices(10, np.arange(10), seed=0), np.arange(10))


# ----- during training ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def digits() -> ImageDataset:
    full = load_dataset("digits")
    return ImageDataset(name="digits", images=full.images[:480], labels=full.labels[:480], class_names=full.class_names)


def _config(method: str, **changes):
    from ml.train_config import TrainConfig

    values = {"dataset": "digits", "method": method, "epochs": 3, "embedding_dim": 8, "batch_size": 32, "lr": 3e-3, "seed": 0, **changes}
    return TrainConfig(**values)


HEALTH_KEYS = {"alignment", "uniformity", "embedding_std", "embedding_std_ratio", "verdict", "monitor_knn_accuracy"}


def test_contrastive_training_records_health_every_epoch_and_streams_it(digits: ImageDataset, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from ml.training import train

    monkeypatch.setenv("LATENTMAP_TORCH_THREADS", "1")
    reports: list[dict] = []
    metrics = train(_config("simclr"), digits, tmp_path, progress=lambda epoch, step, values: reports.append(values) and False)
    history = json.loads((tmp_path / artifacts.HISTORY).read_text())
    assert [row["epoch"] for row in history] == [1, 2, 3]
    for row in history:
        assert HEALTH_KEYS <= set(row) and row["health_seconds"] >= 0
        assert 0 <= row["alignment"] <= 4 and ssl_health.uniform_sphere_uniformity(8) - 0.05 <= row["uniformity"] <= 0
        assert 0 < row["embedding_std_ratio"] <= 1.01 and row["verdict"] in ("healthy", "partial", "collapsed")
        assert 0 <= row["monitor_knn_accuracy"] <= 1
    assert metrics["ssl_health"]["verdict"] == history[-1]["verdict"]
    assert metrics["ssl_health"]["uniform_sphere_std"] == pytest.approx(1 / math.sqrt(8))
    # Every report after the first epoch carries the health rows so far, however throttled the listener.
    epoch_ends = [values for values in reports if "health" in values]
    assert [row["epoch"] for row in epoch_ends[-1]["health"]] == [1, 2, 3]
    assert epoch_ends[-1]["health"][-1] == {key: history[-1][key] for key in HEALTH_KEYS | {"epoch", "loss"}}
    assert "health" not in reports[0]  # step 10 of epoch 1: nothing measured yet


def test_the_monitor_does_not_change_training_and_needs_no_labels(digits: ImageDataset, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from ml.training import train

    monkeypatch.setenv("LATENTMAP_TORCH_THREADS", "1")
    unlabelled = ImageDataset(name="digits", images=digits.images)
    train(_config("simclr", epochs=2), unlabelled, tmp_path / "monitored")
    rows = json.loads((tmp_path / "monitored" / artifacts.HISTORY).read_text())
    assert all(row["monitor_knn_accuracy"] is None and "alignment" in row for row in rows)
    # The monitor's views come from a forked, separately seeded generator: the same run without the
    # monitor trains to the same embedding, bit for bit.
    monkeypatch.setattr(ssl_health, "CONTRASTIVE_METHODS", ())
    train(_config("simclr", epochs=2), unlabelled, tmp_path / "plain")
    assert "alignment" not in json.loads((tmp_path / "plain" / artifacts.HISTORY).read_text())[0]
    assert np.array_equal(np.load(tmp_path / "monitored" / artifacts.EMBEDDINGS), np.load(tmp_path / "plain" / artifacts.EMBEDDINGS))


def test_autoencoders_record_no_ssl_health(digits: ImageDataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ml.training import train

    monkeypatch.setenv("LATENTMAP_TORCH_THREADS", "1")
    metrics = train(_config("ae", epochs=1), digits, tmp_path)
    assert "ssl_health" not in metrics
    assert not HEALTH_KEYS & set(json.loads((tmp_path / artifacts.HISTORY).read_text())[0])


def test_the_contrastive_methods_are_exactly_those_with_two_views() -> None:
    from ml.methods import METHODS

    with_views = {name for name, cls in METHODS.items() if hasattr(cls((1, 8, 8), 4, "mlp", "digits"), "views")}
    assert "simclr" in with_views and with_views == set(ssl_health.CONTRASTIVE_METHODS) & set(METHODS)
