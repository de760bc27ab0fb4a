"""A run's decoder (an autoencoder's, or a contrastive run's trained with a reconstruction weight):
codes → images, and each image's reconstruction error.

`load_with_decoder(run_dir)` rebuilds the run's method from config.json and model.pt (CPU, eval
mode). Images are uint8 N × H × W × C, as datasets hold them; codes float32 N × d.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from ml import artifacts
from ml.analysis.decoding import RECONSTRUCTION_ERRORS, has_decoder
from ml.methods import METHODS, Method
from ml.train_config import TrainConfig

BATCH = 1024


def load_with_decoder(run_dir: Path) -> Method:
    """The run's trained method with its decoder on the CPU in eval mode; ValueError for a run without a
    decoder, FileNotFoundError when its files are gone."""
    run_dir = Path(run_dir)
    saved = artifacts.read_json(run_dir / artifacts.CONFIG)
    config = TrainConfig.from_dict(saved)
    if not has_decoder(config.method, config.method_params):
        raise ValueError(f"the run was trained with {config.method} without a decoder")
    image_shape = tuple(saved["dataset_info"]["image_shape"])
    method = METHODS[config.method](image_shape, config.embedding_dim, saved.get("encoder_resolved", config.encoder),
                                    config.dataset, **config.method_params)
    method.load_state_dict(torch.load(run_dir / artifacts.MODEL, map_location="cpu", weights_only=True))
    return method.eval()


def _to_uint8(batch: torch.Tensor) -> np.ndarray:
    """float (B, C, H, W) in [0, 1] → uint8 (B, H, W, C)."""
    return (batch.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


@torch.inference_mode()
def decode(method: Method, codes: np.ndarray) -> np.ndarray:
    """Images (uint8 M × H × W × C) the decoder draws for codes (M × d)."""
    method.eval()
    device = next(method.parameters()).device
    tensor = torch.as_tensor(np.asarray(codes, dtype=np.float32), device=device)
    return np.concatenate([_to_uint8(method.decoder(tensor[start : start + BATCH])) for start in range(0, len(tensor), BATCH)])


@torch.inference_mode()
def reconstruction_errors(method: Method, images: torch.Tensor) -> np.ndarray:
    """float32 (N,): each image's mean squared error (pixels in [0, 1]) against its reconstruction;
    `images` uint8 (N, C, H, W) on the method's device."""
    method.eval()
    parts = []
    for start in range(0, len(images), BATCH):
        batch = images[start : start + BATCH].float().div_(255.0)
        rebuilt = method.reconstruct(batch)
        parts.append(F.mse_loss(rebuilt, batch, reduction="none").flatten(1).mean(dim=1).float().cpu())
    return torch.cat(parts).numpy().astype(np.float32)


def write_reconstruction_errors(run_dir: Path, method: Method, images: np.ndarray) -> np.ndarray:
    """Compute and store (atomically) reconstruction_errors.npy for images (uint8 N × H × W × C)."""
    device = next(method.parameters()).device
    tensor = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).contiguous().to(device)
    errors = reconstruction_errors(method, tensor)
    artifacts.write_npy(Path(run_dir) / RECONSTRUCTION_ERRORS, errors)
    return errors
