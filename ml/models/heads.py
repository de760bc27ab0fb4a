"""Projection heads for contrastive methods (SimCLR): the loss sees the head's output, the
embedding is what comes in."""
from __future__ import annotations

import torch
from torch import nn


class ProjectionHead(nn.Module):
    """Linear → BatchNorm → ReLU → Linear, as in SimCLR (v1)."""

    def __init__(self, input_dim: int, hidden_dim: int = 256, output_dim: int = 64) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(input_dim, hidden_dim, bias=False),
            nn.BatchNorm1d(hidden_dim),
            nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, output_dim),
        )

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        """embeddings (B, input_dim) → projections (B, output_dim)."""
        return self.net(embeddings)
