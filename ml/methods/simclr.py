"""SimCLR: two augmented views per image, encoder, projection head, NT-Xent."""
from __future__ import annotations

from typing import Any

import torch

from ml.augment import MultiViewTransform, simclr_augmentation
from ml.losses import NTXentLoss
from ml.methods import specs
from ml.methods.base import ImageShape, Method
from ml.models.encoders import build_encoder
from ml.models.heads import ProjectionHead
from ml.models.sizing import resolve_encoder

# Handwritten digits change meaning when mirrored (2 ↔ 5-ish, 3 ↔ ε); clothes and objects do not.
_NO_FLIP_DATASETS = ("digits", "mnist")


class SimCLR(Method):
    """Contrastive learning of views: embeddings are the encoder outputs, the loss sees the head's."""

    spec = specs.SIMCLR

    def __init__(self, image_shape: ImageShape, embedding_dim: int, encoder: str = "auto", dataset: str = "", **params: Any) -> None:
        super().__init__(image_shape, embedding_dim, encoder, dataset, **params)
        self.encoder_name = resolve_encoder(encoder, image_shape)
        self.encoder = build_encoder(self.encoder_name, image_shape, embedding_dim)
        self.head = ProjectionHead(embedding_dim, hidden_dim=256, output_dim=64)
        flip = dataset not in _NO_FLIP_DATASETS
        view = simclr_augmentation(image_shape, self.hyper["augmentation_strength"], horizontal_flip=flip)
        self.views = MultiViewTransform([view, view])
        self.criterion = NTXentLoss(self.hyper["temperature"])

    def loss(self, images: torch.Tensor) -> torch.Tensor:
        view_a, view_b = self.views(images)
        projections = self.head(self.encoder(torch.cat([view_a, view_b])))  # one pass for both views
        z_a, z_b = projections.chunk(2)
        return self.criterion(z_a, z_b)

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        return self.encoder(images)
