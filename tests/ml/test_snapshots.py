"""Epoch snapshots: which epochs, what is stored, how big it may get, and that they follow the training."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ml import artifacts
from ml.datasets import ImageDataset
from ml.params import ParamError
from ml.snapshots import MAX_SNAPSHOTS, list_snapshots, load_snapshot, snapshot_epochs, snapshot_path, write_snapshot
from ml.training import TrainConfig, train

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize(("epochs", "snapshots", "expected"), [
    (20, 8, [3, 5, 8, 10, 13, 15, 18, 20]),
    (3, 8, [1, 2, 3]),
    (100, 2, [50, 100]),
    (7, 1, [7]),
    (5, 0, []),
])
def test_snapshot_epochs_are_evenly_spaced_and_end_at_the_last(epochs: int, snapshots: int, expected: list[int]) -> None:
    assert snapshot_epochs(epochs, snapshots) == expected


def test_training_keeps_float16_snapshots_with_their_knn_accuracy(small_digits: ImageDataset, tmp_path: Path) -> None:
    config = TrainConfig("digits", "ae", epochs=6, embedding_dim=8, batch_size=32, lr=3e-3, seed=0, snapshots=3)
    metrics = train(config, small_digits, tmp_path)
    rows = list_snapshots(tmp_path)
    assert [row["epoch"] for row in rows] == [2, 4, 6]
    files = sorted((tmp_path / "snapshots").glob("*.npy"))
    assert len(files) == 3  # bounded: one N × d float16 file per snapshot, nothing else grows
    first = np.load(files[0])
    assert first.dtype == np.float16 and first.shape == (480, 8)
    final = np.load(tmp_path / artifacts.EMBEDDINGS)
    assert np.allclose(load_snapshot(tmp_path, 6), final, rtol=1e-3, atol=1e-3)
    assert not np.allclose(load_snapshot(tmp_path, 2), final, atol=1e-2)  # the embedding moved during training
    assert rows[-1]["knn_accuracy"] == metrics["knn_accuracy"] and 0 < rows[0]["knn_accuracy"] <= 1


def test_off_or_retrained_leaves_no_stale_snapshots(small_digits: ImageDataset, tmp_path: Path) -> None:
    write_snapshot(tmp_path, 9, np.ones((3, 2)), None)  # from an earlier training in this folder
    config = TrainConfig("digits", "ae", epochs=1, embedding_dim=4, batch_size=64, lr=3e-3, seed=0, snapshots=0)
    train(config, small_digits, tmp_path)
    assert list_snapshots(tmp_path) == [] and not snapshot_path(tmp_path, 9).exists()


def test_values_beyond_float16_are_kept_in_float32(tmp_path: Path) -> None:
    write_snapshot(tmp_path, 1, np.array([[1e6, 0.5]], dtype=np.float32), 0.5)
    assert np.load(snapshot_path(tmp_path, 1)).dtype == np.float32
    assert list_snapshots(tmp_path) == [{"epoch": 1, "knn_accuracy": 0.5}]


def test_snapshot_counts_outside_the_range_are_refused(small_digits: ImageDataset, tmp_path: Path) -> None:
    config = TrainConfig("digits", "ae", epochs=1, embedding_dim=4, batch_size=64, lr=3e-3, seed=0, snapshots=MAX_SNAPSHOTS + 1)
    with pytest.raises(ParamError, match="snapshots must be between 0 and 32"):
        train(config, small_digits, tmp_path)
