"""MoCo v2: a momentum (EMA) copy of encoder + head makes the keys, a queue of past keys gives the
negatives, InfoNCE with a temperature, symmetric over the two views (He et al. 2020; Chen et al. 2020)."""
from __future__ import annotations

from typing import Any

import torch
from torch.nn import functional as F

from ml.losses import info_nce_loss
from ml.methods import specs
from ml.methods.base import ImageShape
from ml.methods.contrastive import ContrastiveMethod
from ml.models.queue import KeyQueue


class MoCo(ContrastiveMethod):
    """Queries from the online networks, keys from their EMA twins; after each loss both views' keys
    join the queue (oldest out). The queue and the twins are buffers and modules of this one, so they
    are in every checkpoint."""

    spec = specs.MOCO
    head_batch_norm = False  # MoCo v2's head: Linear → ReLU → Linear

    def __init__(self, image_shape: ImageShape, embedding_dim: int, encoder: str = "auto", dataset: str = "", **params: Any) -> None:
        super().__init__(image_shape, embedding_dim, encoder, dataset, **params)
        self.keep_momentum_copy("encoder")
        self.keep_momentum_copy("head")
        self.queue = KeyQueue(self.hyper["queue_size"], self.head_output)

    def contrastive_loss(self, views: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        q_a, q_b = self.head(features).chunk(2)
        k_a, k_b = self.project_momentum(views).chunk(2)
        # Symmetric: view a's queries against view b's keys and the other way round, in one pass.
        loss = info_nce_loss(torch.cat([q_a, q_b]), torch.cat([k_b, k_a]), self.queue.negatives(), self.hyper["temperature"])
        self.queue.enqueue(F.normalize(torch.cat([k_a, k_b]), dim=1))
        return loss
