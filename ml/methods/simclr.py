"""SimCLR: two augmented views per image, encoder, projection head, NT-Xent over the batch."""
from __future__ import annotations

from typing import Any

import torch

from ml.losses import NTXentLoss
from ml.methods import specs
from ml.methods.base import ImageShape
from ml.methods.contrastive import ContrastiveMethod


class SimCLR(ContrastiveMethod):
    """Each view's positive is the other view of its image; the other 2B − 2 views are its negatives."""

    spec = specs.SIMCLR

    def __init__(self, image_shape: ImageShape, embedding_dim: int, encoder: str = "auto", dataset: str = "", **params: Any) -> None:
        super().__init__(image_shape, embedding_dim, encoder, dataset, **params)
        self.criterion = NTXentLoss(self.hyper["temperature"])

    def contrastive_loss(self, views: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        z_a, z_b = self.head(features).chunk(2)
        return self.criterion(z_a, z_b)
