"""The decoder: a map position's code (inverse-distance weighting), codes along a line, decoding and
reconstruction errors of a real tiny autoencoder run."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ml.analysis.decoding import RECONSTRUCTION_ERRORS, idw_code, line_codes, outside_map
from ml.datasets import ImageDataset
from ml.decoder import decode, load_with_decoder, write_reconstruction_errors
from ml.training import TrainConfig, train

pytestmark = pytest.mark.usefixtures("one_thread")


def test_idw_gives_a_points_own_code_on_it_and_a_weighted_mean_between() -> None:
    coords = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [5.0, 5.0]])
    codes = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0], [9.0, 9.0]], dtype=np.float32)
    assert idw_code(coords, codes, 1.0, 0.0).tolist() == [0.0, 1.0]
    # Halfway between points 0 and 1 (distance 0.5 each), point 2 at √1.25, point 3 far: k = 3 leaves it out.
    weights = np.array([4.0, 4.0, 1 / 1.25])
    expected = weights @ codes[:3] / weights.sum()
    assert np.allclose(idw_code(coords, codes, 0.5, 0.0, k=3), expected)


def test_positions_outside_the_map_and_lines_of_codes() -> None:
    coords = np.array([[0.0, 0.0], [10.0, 2.0]])
    assert outside_map(coords, 10.4, -0.05) is None  # within the 5% margin
    assert "x=10.6 is outside the map" in outside_map(coords, 10.6, 1.0)
    assert "y=nan" in outside_map(coords, 1.0, float("nan"))
    line = line_codes(np.array([0.0, 2.0]), np.array([4.0, -2.0]), 5)
    assert line.tolist() == [[0.0, 2.0], [1.0, 1.0], [2.0, 0.0], [3.0, -1.0], [4.0, -2.0]]


def test_decoding_a_points_code_draws_its_reconstruction(small_digits: ImageDataset, tmp_path: Path) -> None:
    config = TrainConfig("digits", "ae", epochs=2, embedding_dim=8, batch_size=32, lr=3e-3, seed=0, snapshots=0)
    train(config, small_digits, tmp_path)
    method = load_with_decoder(tmp_path)
    codes = np.load(tmp_path / "embeddings.npy")
    drawn = decode(method, codes[:5])
    assert drawn.dtype == np.uint8 and drawn.shape == (5, 8, 8, 1)
    with torch.inference_mode():
        batch = torch.from_numpy(small_digits.images[:5]).permute(0, 3, 1, 2).float() / 255
        rebuilt = (method.reconstruct(batch).clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    assert np.abs(drawn.astype(int) - rebuilt.astype(int)).max() <= 1
    # Training stored every image's reconstruction error; recomputing it from the model gives the same.
    stored = np.load(tmp_path / RECONSTRUCTION_ERRORS)
    assert stored.shape == (480,) and stored.dtype == np.float32 and stored.min() > 0
    assert np.allclose(write_reconstruction_errors(tmp_path, method, small_digits.images), stored, rtol=1e-5)
    expected = ((rebuilt.astype(np.float64) / 255 - batch.permute(0, 2, 3, 1).numpy()) ** 2).mean(axis=(1, 2, 3))
    assert np.allclose(stored[:5], expected, atol=2e-4)  # against the uint8-rounded reconstruction


def test_a_run_without_a_decoder_is_refused(small_digits: ImageDataset, tmp_path: Path) -> None:
    config = TrainConfig("digits", "simclr", epochs=1, embedding_dim=8, batch_size=64, lr=3e-3, seed=0, snapshots=0,
                         method_params={"reconstruction_weight": 0})
    train(config, small_digits, tmp_path)
    assert not (tmp_path / RECONSTRUCTION_ERRORS).exists()
    with pytest.raises(ValueError, match="simclr without a decoder"):
        load_with_decoder(tmp_path)
