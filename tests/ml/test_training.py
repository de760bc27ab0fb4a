"""The training loop: artifacts, determinism, progress, stopping and resuming."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from ml import artifacts
from ml.datasets import ImageDataset
from ml.params import ParamError
from ml.progress import Stopped
from ml.snapshots import list_snapshots, load_snapshot
from ml.training import TrainConfig, configure_threads, train


pytestmark = pytest.mark.usefixtures("one_thread")


def config(method: str = "ae", **changes) -> TrainConfig:
    values = {"dataset": "digits", "method": method, "epochs": 2, "embedding_dim": 8, "batch_size": 32, "lr": 3e-3, "seed": 0, **changes}
    return TrainConfig(**values)


def test_run_dir_holds_every_artifact_with_the_right_shapes(small_digits: ImageDataset, tmp_path: Path) -> None:
    metrics = train(config("dae", method_params={"noise_std": 0.2}), small_digits, tmp_path)
    embeddings = np.load(tmp_path / artifacts.EMBEDDINGS)
    assert embeddings.dtype == np.float32 and embeddings.shape == (480, 8) and np.isfinite(embeddings).all()
    labels = np.load(tmp_path / artifacts.LABELS)
    assert labels.dtype == np.int64 and np.array_equal(labels, small_digits.labels)
    saved = json.loads((tmp_path / artifacts.CONFIG).read_text())
    assert TrainConfig.from_dict(saved) == config("dae", method_params={"noise_std": 0.2})
    assert saved["encoder_resolved"] == "mlp" and saved["dataset_info"]["n"] == 480
    history = json.loads((tmp_path / artifacts.HISTORY).read_text())
    assert [row["epoch"] for row in history] == [1, 2]
    assert json.loads((tmp_path / artifacts.METRICS).read_text()) == metrics
    assert 0.5 < metrics["knn_accuracy"] <= 1 and 0.5 < metrics["linear_probe_accuracy"] <= 1
    assert 0.5 < metrics["knn_accuracy_cosine"] <= 1  # beside the Euclidean kNN, on the same split
    assert metrics["n_train"] == 480 and metrics["n_eval"] == 96 and metrics["split"] == "stratified-80-20"
    assert metrics["train_seconds"] > 0 and metrics["images_per_second"] > 0 and metrics["final_loss"] == history[-1]["loss"]
    sample = np.load(tmp_path / artifacts.RECONSTRUCTIONS)
    assert sample["indices"].shape == (16,) and sample["originals"].shape == sample["reconstructions"].shape == (16, 8, 8, 1)
    assert sample["reconstructions"].dtype == np.uint8 and np.array_equal(sample["originals"], small_digits.images[sample["indices"]])
    state = torch.load(tmp_path / artifacts.MODEL, weights_only=True)
    assert "encoder.net.1.weight" in state and "decoder.net.0.weight" in state
    checkpoint = torch.load(tmp_path / artifacts.CHECKPOINT, weights_only=True)
    assert checkpoint["epoch"] == 2
    assert checkpoint["optimiser"]["param_groups"][0]["fused"]  # Adam's fused kernel on the CPU


def test_same_seed_gives_identical_embeddings_and_another_seed_does_not(small_digits: ImageDataset, tmp_path: Path) -> None:
    train(config("simclr"), small_digits, tmp_path / "a")
    train(config("simclr"), small_digits, tmp_path / "b")
    train(config("simclr", seed=1), small_digits, tmp_path / "c")
    a, b, c = (np.load(tmp_path / run / artifacts.EMBEDDINGS) for run in "abc")
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


def test_progress_reports_and_stop_then_resume_matches_an_uninterrupted_run(small_digits: ImageDataset, tmp_path: Path) -> None:
    run = config("simclr", epochs=3)  # augmentation randomness: resume must restore the RNG states
    train(run, small_digits, tmp_path / "whole")
    calls: list[tuple[int, int, dict]] = []

    def stop_in_second_epoch(epoch: int, step: int, metrics: dict) -> bool:
        calls.append((epoch, step, metrics))
        return epoch == 2 and step == 10

    with pytest.raises(Stopped):
        train(run, small_digits, tmp_path / "parted", progress=stop_in_second_epoch)
    # 480 images / 32 = 15 steps an epoch: reports at step 10 and at the end of epoch 1, then step 10 of epoch 2.
    assert [(epoch, step) for epoch, step, _ in calls] == [(1, 10), (1, 15), (2, 10)]
    assert set(calls[0][2]) == {"fraction", "epoch", "epochs", "loss", "images_per_second", "eta_seconds"}
    assert calls[1][2]["fraction"] == pytest.approx(1 / 3) and calls[2][2]["fraction"] == pytest.approx(25 / 45)
    assert calls[1][2]["epoch"] == 1 and calls[2][2]["epochs"] == 3 and calls[2][2]["eta_seconds"] > 0
    checkpoint = torch.load(tmp_path / "parted" / artifacts.CHECKPOINT, weights_only=True)
    assert checkpoint["epoch"] == 1 and len(checkpoint["history"]) == 1
    assert not (tmp_path / "parted" / artifacts.EMBEDDINGS).exists()

    metrics = train(run, small_digits, tmp_path / "parted", resume=True)
    whole = np.load(tmp_path / "whole" / artifacts.EMBEDDINGS)
    assert np.array_equal(np.load(tmp_path / "parted" / artifacts.EMBEDDINGS), whole)
    assert metrics["final_loss"] == json.loads((tmp_path / "whole" / artifacts.METRICS).read_text())["final_loss"]
    assert [row["epoch"] for row in json.loads((tmp_path / "parted" / artifacts.HISTORY).read_text())] == [1, 2, 3]
    # The snapshots (default 8: every one of the 3 epochs) match too; taking them changed nothing above.
    assert [row["epoch"] for row in list_snapshots(tmp_path / "parted")] == [1, 2, 3]
    for epoch in (1, 2, 3):
        assert np.array_equal(load_snapshot(tmp_path / "parted", epoch), load_snapshot(tmp_path / "whole", epoch))
    with pytest.raises(ValueError, match="another configuration"):
        train(config("simclr", epochs=4), small_digits, tmp_path / "parted", resume=True)


def test_official_split_trains_on_the_train_part_and_scores_on_the_test_part(small_digits: ImageDataset, tmp_path: Path) -> None:
    mask = np.arange(480) < 400
    split = ImageDataset(name="digits", images=small_digits.images, labels=small_digits.labels, class_names=small_digits.class_names, train_mask=mask)
    metrics = train(config(), split, tmp_path)
    assert metrics["n_train"] == 400 and metrics["n_eval"] == 80 and metrics["split"] == "official"
    assert np.load(tmp_path / artifacts.EMBEDDINGS).shape == (480, 8)


def test_unlabelled_dataset_has_no_accuracies_and_no_labels_file(small_digits: ImageDataset, tmp_path: Path) -> None:
    metrics = train(config(epochs=1), ImageDataset(name="folder", images=small_digits.images), tmp_path)
    assert metrics["knn_accuracy"] is None and metrics["linear_probe_accuracy"] is None and metrics["split"] is None
    assert metrics["knn_accuracy_cosine"] is None
    assert not (tmp_path / artifacts.LABELS).exists()


def test_invalid_configs_are_refused(small_digits: ImageDataset, tmp_path: Path) -> None:
    with pytest.raises(ParamError, match="unknown method"):
        train(config("pca"), small_digits, tmp_path)
    with pytest.raises(ParamError, match="epochs"):
        train(config(epochs=0), small_digits, tmp_path)
    with pytest.raises(ParamError, match="noise_std"):
        train(config("dae", method_params={"noise_std": "loud"}), small_digits, tmp_path)


def test_thread_count_is_fixed_by_the_settings_and_recorded(small_digits: ImageDataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LATENTMAP_TORCH_THREADS")
    train(config(epochs=1), small_digits, tmp_path / "mlp")  # the MLP encoder always runs on one thread
    assert json.loads((tmp_path / "mlp" / artifacts.CONFIG).read_text())["torch_threads"] == 1
    assert torch.load(tmp_path / "mlp" / artifacts.CHECKPOINT, weights_only=True)["torch_threads"] == 1
    monkeypatch.setenv("LATENTMAP_TORCH_THREADS", "2")
    tiny = ImageDataset(name="digits", images=small_digits.images[:64], labels=small_digits.labels[:64])
    train(config(epochs=1), tiny, tmp_path / "env")
    assert json.loads((tmp_path / "env" / artifacts.CONFIG).read_text())["torch_threads"] == 2


def test_only_the_tiny_image_mlp_is_pinned_to_one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LATENTMAP_TORCH_THREADS", raising=False)
    before = torch.get_num_threads()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        assert configure_threads("mlp", image_shape=(1, 8, 8)) == 1
        assert configure_threads("mlp") == 1
        assert configure_threads("mlp", image_shape=(1, 28, 28)) == cores  # the wide 28 px MLP splits well
        assert configure_threads("mlp", threads=1, image_shape=(1, 28, 28)) == 1  # a resumed run keeps its count
    finally:
        torch.set_num_threads(before)
