"""BYOL: an online encoder + projector + predictor learns to predict, for the other view, the
projection made by a target network that is an EMA of the online one; no negatives (Grill et al. 2020)."""
from __future__ import annotations

from typing import Any

import torch

from ml.losses import negative_cosine_loss
from ml.methods import specs
from ml.methods.base import ImageShape
from ml.methods.contrastive import ContrastiveMethod
from ml.models.ema import cosine_momentum
from ml.models.heads import ProjectionHead


class BYOL(ContrastiveMethod):
    """The target's momentum rises from `momentum` to 1 on a cosine schedule over the run's steps."""

    spec = specs.BYOL

    def __init__(self, image_shape: ImageShape, embedding_dim: int, encoder: str = "auto", dataset: str = "", **params: Any) -> None:
        super().__init__(image_shape, embedding_dim, encoder, dataset, **params)
        self.predictor = ProjectionHead(self.head_output, self.hyper["predictor_hidden"], self.head_output)
        self.keep_momentum_copy("encoder")
        self.keep_momentum_copy("head")

    def contrastive_loss(self, views: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        p_a, p_b = self.predictor(self.head(features)).chunk(2)
        z_a, z_b = self.project_momentum(views).chunk(2)
        return (negative_cosine_loss(p_a, z_b) + negative_cosine_loss(p_b, z_a)) / 2

    def momentum_at(self, step: int, total_steps: int) -> float:
        return cosine_momentum(self.hyper["momentum"], step, total_steps)
