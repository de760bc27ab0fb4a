"""The positive pairs a contrastive run's own transform makes of one image, judged by its trained encoder.

For the augmentation inspector: `augmentation_pairs(run_dir, image, index, pairs)` draws `pairs`
pairs of views of `image` with the run's view transform (the one training used), embeds them with
the trained encoder (eval mode, no grad) and returns the views with each pair's cosine
similarity, beside the similarity of the image to its nearest other image in the stored
embedding (and the median over all others) so a person sees whether the encoder holds an
image's views closer together than it holds different images.

The views are seeded by (the run's seed, index): the same point always shows the same pairs.
Trained models are cached per run directory and model file, a few at a time.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ml import artifacts
from ml.methods import METHODS, Method
from ml.ssl_health import CONTRASTIVE_METHODS, normalised

MAX_PAIRS = 16
MODELS_CACHED = 4


class NotInspectable(ValueError):
    """The run has no view transform or trained encoder to inspect (a reason a person can act on)."""


@lru_cache(maxsize=MODELS_CACHED)
def _load(run_dir: str, model_mtime_ns: int) -> tuple[Method, dict[str, Any]]:
    config = artifacts.read_json(Path(run_dir) / artifacts.CONFIG)
    info = config.get("dataset_info") or {}
    encoder = config.get("encoder_resolved") or config.get("encoder", "auto")
    method = METHODS[config["method"]](_chw(info["image_shape"]), int(config["embedding_dim"]), encoder,
                                       info.get("name", config["dataset"]), **(config.get("method_params") or {}))
    state = torch.load(Path(run_dir) / artifacts.MODEL, map_location="cpu", weights_only=True)
    try:
        method.load_state_dict(state)
    except RuntimeError as exc:  # a model saved by another version of the method's networks
        raise NotInspectable(f"the run's model does not fit today's {config['method']} networks ({str(exc).splitlines()[0]}); "
                             "train the run again to inspect it") from None
    method.eval()
    return method, config


def _chw(image_shape: list[int]) -> tuple[int, int, int]:
    """config.json's dataset image_shape (C, H, W, as ImageDataset.image_shape) as a tuple."""
    channels, height, width = (int(value) for value in image_shape)
    return channels, height, width


def load_method(run_dir: Path) -> tuple[Method, dict[str, Any]]:
    """The trained method of `run_dir` (eval mode, cached) and its config.json; NotInspectable when it has none."""
    run_dir = Path(run_dir)
    config_path, model_path = run_dir / artifacts.CONFIG, run_dir / artifacts.MODEL
    if not config_path.exists() or not model_path.exists():
        raise NotInspectable(f"{run_dir.name} has no trained model (model.pt); only finished training runs can be inspected")
    method_name = artifacts.read_json(config_path).get("method")
    if method_name not in CONTRASTIVE_METHODS:
        raise NotInspectable(f"the run was trained with {method_name!r}, which makes no augmented views; "
                             f"the augmentation inspector needs a contrastive run ({', '.join(CONTRASTIVE_METHODS)})")
    return _load(str(run_dir), model_path.stat().st_mtime_ns)


def _to_uint8(views: torch.Tensor) -> np.ndarray:
    """float (B, C, H, W) in [0, 1] → uint8 (B, H, W, C)."""
    return (views.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


@torch.inference_mode()
def augmentation_pairs(run_dir: Path, image: np.ndarray, index: int, pairs: int = 8) -> dict[str, Any]:
    """`pairs` positive pairs of `image` (uint8 H × W × C, the dataset's image `index`) under the run's transform.

    Returns {"views": uint8 (pairs, 2, H, W, C), "pair_similarity": float64 (pairs,) cosine of each
    pair's embeddings, "original_similarity": float64 (pairs, 2) cosine of each view to the clean
    image, "nearest_index": int, "nearest_similarity": float (cosine of the image to its nearest
    other image in embeddings.npy), "median_similarity": float (to all other images)}.
    """
    if not 1 <= pairs <= MAX_PAIRS:
        raise ValueError(f"pairs must be in 1..{MAX_PAIRS}, got {pairs!r}")
    method, config = load_method(run_dir)
    batch = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div(255.0).unsqueeze(0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(config.get("seed", 0)) * 1_000_003 + int(index))
        view_a, view_b = method.views(batch.expand(pairs, -1, -1, -1).contiguous())
    clean, a, b = (normalised(method.embed(part).float().numpy()) for part in (batch, view_a, view_b))

    embeddings = np.load(Path(run_dir) / artifacts.EMBEDDINGS, mmap_mode="r")
    others = normalised(np.asarray(embeddings)) @ normalised(np.asarray(embeddings[index : index + 1]))[0]
    others[index] = -np.inf
    nearest = int(np.argmax(others))
    rest = np.delete(others, index)
    return {
        "views": np.stack([_to_uint8(view_a), _to_uint8(view_b)], axis=1),
        "pair_similarity": np.sum(a * b, axis=1),
        "original_similarity": np.stack([a @ clean[0], b @ clean[0]], axis=1),
        "nearest_index": nearest,
        "nearest_similarity": float(others[nearest]),
        "median_similarity": float(np.median(rest)) if len(rest) else float("nan"),
    }
