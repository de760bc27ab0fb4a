"""Training precision: bfloat16 autocast for the contrastive methods where native, float32 losses, recorded for resume."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ml import artifacts, precision
from ml.datasets import ImageDataset
from ml.losses import info_nce_loss, negative_cosine_loss, nt_xent_loss
from ml.progress import Stopped
from ml.training import TrainConfig, train

pytestmark = pytest.mark.usefixtures("one_thread")
CPU = torch.device("cpu")


def test_only_contrastive_methods_on_native_bf16_hardware_train_in_bfloat16(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(precision.ENV_VARIABLE, raising=False)
    monkeypatch.setattr(precision, "native_bfloat16", lambda device: True)
    assert [precision.choose_precision(name, CPU) for name in ("simclr", "moco", "byol")] == ["bfloat16"] * 3
    assert [precision.choose_precision(name, CPU) for name in ("ae", "dae", "sparse-ae", "cae")] == ["float32"] * 4
    monkeypatch.setattr(precision, "native_bfloat16", lambda device: False)  # emulated bf16 would be slower
    assert precision.choose_precision("moco", CPU) == "float32"
    assert precision.choose_precision("moco", CPU, recorded="bfloat16") == "bfloat16"  # a resumed run keeps its own
    monkeypatch.setenv(precision.ENV_VARIABLE, "bfloat16")
    assert precision.choose_precision("dae", CPU) == "bfloat16"
    monkeypatch.setenv(precision.ENV_VARIABLE, "float16")
    with pytest.raises(ValueError, match="LATENTMAP_PRECISION must be one of float32, bfloat16, got 'float16'"):
        precision.choose_precision("moco", CPU)


def test_the_contrastive_losses_compute_in_float32_under_bf16_autocast() -> None:
    generator = torch.Generator().manual_seed(0)
    a, b, queue = (torch.randn(rows, 16, generator=generator).bfloat16() for rows in (8, 8, 32))
    for loss, args in ((nt_xent_loss, (a, b, 0.05)), (info_nce_loss, (a, b, queue, 0.05)), (negative_cosine_loss, (a, b))):
        with precision.autocast(CPU, "bfloat16"):
            inside = loss(*args)
        float32 = loss(*(arg.float() if isinstance(arg, torch.Tensor) else arg for arg in args))
        assert inside.dtype == torch.float32
        assert torch.equal(inside, float32), loss.__name__  # not one bf16 rounding on the way


def moco(**changes) -> TrainConfig:
    values = {"dataset": "digits", "method": "moco", "epochs": 3, "embedding_dim": 8, "batch_size": 32, "lr": 3e-3, "seed": 0,
              "method_params": {"queue_size": 96}, "snapshots": 0, **changes}
    return TrainConfig(**values)


def train_whole_and_stopped(dataset: ImageDataset, folder: Path) -> None:
    """folder/whole: an uninterrupted run; folder/parted: the same run stopped in its second epoch."""
    train(moco(), dataset, folder / "whole")
    with pytest.raises(Stopped):
        train(moco(), dataset, folder / "parted", progress=lambda epoch, step, metrics: epoch == 2)


def test_a_bfloat16_run_records_its_precision_and_resumes_in_it_bit_identically(small_digits: ImageDataset, tmp_path: Path,
                                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(precision.ENV_VARIABLE, "bfloat16")
    train_whole_and_stopped(small_digits, tmp_path)
    assert torch.load(tmp_path / "parted" / artifacts.CHECKPOINT, weights_only=True)["precision"] == "bfloat16"
    monkeypatch.setenv(precision.ENV_VARIABLE, "float32")  # the recorded precision wins over the environment
    train(moco(), small_digits, tmp_path / "parted", resume=True)
    assert json.loads((tmp_path / "parted" / artifacts.CONFIG).read_text())["precision"] == "bfloat16"
    embeddings = np.load(tmp_path / "parted" / artifacts.EMBEDDINGS)
    assert np.array_equal(embeddings, np.load(tmp_path / "whole" / artifacts.EMBEDDINGS))

    train(moco(), small_digits, tmp_path / "float32")  # autocast is really on: float32 trains to other numbers
    assert json.loads((tmp_path / "float32" / artifacts.CONFIG).read_text())["precision"] == "float32"
    assert not np.allclose(embeddings, np.load(tmp_path / "float32" / artifacts.EMBEDDINGS), atol=1e-3)


def test_a_checkpoint_from_before_precisions_were_recorded_resumes_in_float32(small_digits: ImageDataset, tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(precision.ENV_VARIABLE, "float32")
    train_whole_and_stopped(small_digits, tmp_path)
    checkpoint_path = tmp_path / "parted" / artifacts.CHECKPOINT
    checkpoint = torch.load(checkpoint_path, weights_only=True)
    del checkpoint["precision"]
    torch.save(checkpoint, checkpoint_path)
    monkeypatch.setenv(precision.ENV_VARIABLE, "bfloat16")
    train(moco(), small_digits, tmp_path / "parted", resume=True)
    assert np.array_equal(np.load(tmp_path / "parted" / artifacts.EMBEDDINGS), np.load(tmp_path / "whole" / artifacts.EMBEDDINGS))
