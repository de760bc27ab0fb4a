"""SCAN's cluster heads and loss in torch, for `ml.analysis.scan` (imported only when a SCAN clustering runs)."""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from ml.progress import ProgressCallback, report

BATCH = 512
# Small inputs get smaller batches, so that every epoch still takes this many optimiser steps.
MIN_STEPS_PER_EPOCH = 8
HIDDEN = 128
PREDICT_CHUNK = 8_192
LEARNING_RATE = 1e-3
WEIGHT_DECAY = 1e-4


def train_scan(x: np.ndarray, neighbors: np.ndarray, k: int, params: dict, seed: int, progress: ProgressCallback | None) -> np.ndarray:
    """Labels (N,) of x in at most k clusters: SCAN's loss on (point, random neighbour) pairs."""
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        heads = ClusterHeads(x.shape[1], k, params["heads"])
    points = torch.from_numpy((x - x.mean(0)) / x.std(0).clip(1e-12))
    pairs = torch.from_numpy(np.ascontiguousarray(neighbors))
    optimiser = torch.optim.Adam(heads.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
    n, epochs = len(points), params["epochs"]
    batch_size = max(2, min(BATCH, n // MIN_STEPS_PER_EPOCH))
    for epoch in range(epochs):
        epoch_loss = torch.zeros(params["heads"])
        for batch in torch.randperm(n, generator=generator).split(batch_size):
            if len(batch) < 2:  # batch norm needs two points
                continue
            drawn = torch.randint(pairs.shape[1], (len(batch),), generator=generator)
            losses = scan_losses(heads(points[batch]), heads(points[pairs[batch, drawn]]), params["entropy_weight"])
            optimiser.zero_grad(set_to_none=True)
            losses.sum().backward()
            optimiser.step()
            epoch_loss += losses.detach() * len(batch)
        report(progress, epoch + 1, epochs, {"fraction": (epoch + 1) / epochs})
    best = int(epoch_loss.argmin())
    heads.eval()
    with torch.no_grad():  # in chunks: every head's hidden layer for a million points would take gigabytes
        return torch.cat([heads(chunk)[:, best].argmax(1) for chunk in points.split(PREDICT_CHUNK)]).numpy()


def scan_losses(anchors: torch.Tensor, neighbours: torch.Tensor, entropy_weight: float) -> torch.Tensor:
    """Per head: −mean log ⟨p(anchor), p(neighbour)⟩ − entropy_weight × entropy of the mean p(anchor).

    anchors, neighbours: probabilities (B, heads, k).
    """
    consistency = -torch.log((anchors * neighbours).sum(2).clamp_min(1e-7)).mean(0)
    mean = anchors.mean(0)
    entropy = -(mean * torch.log(mean.clamp_min(1e-7))).sum(1)
    return consistency - entropy_weight * entropy


class ClusterHeads(nn.Module):
    """`heads` two-layer networks d → HIDDEN → k side by side, as one module: probabilities (B, heads, k)."""

    def __init__(self, dims: int, k: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.hidden = nn.Sequential(nn.Linear(dims, HIDDEN * heads), nn.BatchNorm1d(HIDDEN * heads), nn.ReLU())
        bound = 1 / math.sqrt(HIDDEN)  # nn.Linear's initialisation, per head
        self.weight = nn.Parameter(torch.empty(heads, HIDDEN, k).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(heads, k).uniform_(-bound, bound))

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        hidden = self.hidden(points).view(len(points), self.heads, HIDDEN)
        return (torch.einsum("bhi,hik->bhk", hidden, self.weight) + self.bias).softmax(2)
