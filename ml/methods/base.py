"""The base class of every training method: an `nn.Module` that owns its networks and its loss.

A method is a small class registered in `ml.methods.METHODS`. The training loop only calls
`loss(images)` on float batches (B, C, H, W) in [0, 1], `embed(images)` to encode, and
`reconstruct(images)` (autoencoders) for the reconstruction sample.
"""
from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from ml.models.encoders import is_small, resolve_encoder
from ml.params import ParamSchema

ImageShape = tuple[int, int, int]  # (C, H, W)


class Method(nn.Module):
    """Base of all methods.

    name / label: registry key and the name people see.
    params: the method's own parameters (validated before construction).
    defaults: the shared training hyperparameters it prefers for 28/32 px datasets
        (epochs, lr, batch_size, embedding_dim); `defaults_for` adapts them to a dataset:
        `small_defaults` for tiny images or datasets, `mlp_defaults` for the grey 28 px images
        that `auto` encodes with the wide MLP (cheaper per image, so more epochs fit).
    """

    name: ClassVar[str]
    label: ClassVar[str]
    params: ClassVar[ParamSchema] = ParamSchema()
    defaults: ClassVar[dict[str, Any]] = {"epochs": 15, "lr": 2e-3, "batch_size": 256, "embedding_dim": 32}
    # Tiny datasets (the 8×8 digits) need many more passes for the same number of optimiser steps.
    small_defaults: ClassVar[dict[str, Any]] = {"epochs": 100, "lr": 2e-3, "batch_size": 128, "embedding_dim": 32}
    # Fashion-MNIST (60k train images): 40 epochs of the MLP denoising autoencoder take ~10 min on one core.
    mlp_defaults: ClassVar[dict[str, Any]] = {"epochs": 40, "lr": 2e-3, "batch_size": 256, "embedding_dim": 32}

    def __init__(self, image_shape: ImageShape, embedding_dim: int, encoder: str = "auto", dataset: str = "", **params: Any) -> None:
        super().__init__()
        self.image_shape = image_shape
        self.embedding_dim = embedding_dim
        self.hyper = self.params.validate(params)

    @classmethod
    def defaults_for(cls, image_shape: ImageShape, n_images: int) -> dict[str, Any]:
        """The training defaults suited to a dataset of `n_images` images of `image_shape` (C, H, W)."""
        if is_small(image_shape) or n_images < 5000:
            return dict(cls.small_defaults)
        return dict(cls.mlp_defaults if resolve_encoder("auto", image_shape) == "mlp" else cls.defaults)

    @classmethod
    def describe(cls) -> dict[str, Any]:
        """JSON description for /api/methods."""
        return {"label": cls.label, "params": cls.params.describe(), "defaults": dict(cls.defaults)}

    def loss(self, images: torch.Tensor) -> torch.Tensor:
        """images (B, C, H, W) in [0, 1] → scalar training loss."""
        raise NotImplementedError

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """images (B, C, H, W) in [0, 1] → embeddings (B, embedding_dim)."""
        raise NotImplementedError

    def reconstruct(self, images: torch.Tensor) -> torch.Tensor | None:
        """images (B, C, H, W) → reconstructions (B, C, H, W) in [0, 1], or None for non-autoencoders."""
        return None
