"""Heads of the contrastive methods: the loss sees a head's output, the embedding is what comes in.

One block shape serves all three: SimCLR's and BYOL's projectors and BYOL's predictor are
Linear → BatchNorm → ReLU → Linear; MoCo v2's projector is the same without the batch norm.
"""
from __future__ import annotations

import torch
from torch import nn


class ProjectionHead(nn.Module):
    """Linear → [BatchNorm] → ReLU → Linear, as in SimCLR (v1), MoCo v2 (no batch norm) and BYOL."""

    def __init__(self, input_dim: int, hidden_dim: int = 256, output_dim: int = 64, batch_norm: bool = True) -> None:
        super().__init__()
        hidden: list[nn.Module] = [nn.Linear(input_dim, hidden_dim, bias=not batch_norm)]
        if batch_norm:
            hidden.append(nn.BatchNorm1d(hidden_dim))
        self.net = nn.Sequential(*hidden, nn.ReLU(inplace=True), nn.Linear(hidden_dim, output_dim))

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        """embeddings (B, input_dim) → projections (B, output_dim)."""
        return self.net(embeddings)
