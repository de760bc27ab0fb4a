"""MoCo's queue of negative keys: a fixed-size FIFO of past key embeddings, kept as buffers so the
checkpoint holds it (stop + resume continues with the same negatives).

Hand-written rather than lightly's `MemoryBankModule` so as not to add lightly to the product's
dependencies for twenty lines.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class KeyQueue(nn.Module):
    """`size` keys of `dim` dimensions, oldest first out.

    Starts with random unit vectors (as MoCo does), so there are negatives from the first step.
    """

    keys: torch.Tensor
    pointer: torch.Tensor

    def __init__(self, size: int, dim: int) -> None:
        super().__init__()
        self.register_buffer("keys", F.normalize(torch.randn(size, dim), dim=1))  # (size, dim)
        self.register_buffer("pointer", torch.zeros((), dtype=torch.long))  # the slot the next key goes to

    @property
    def size(self) -> int:
        return self.keys.shape[0]

    def negatives(self) -> torch.Tensor:
        """A copy of the queued keys (size, dim): a copy, so that `enqueue` after the loss does not
        change a tensor the backward pass still needs."""
        return self.keys.clone()

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor) -> None:
        """keys (n, dim) replace the n oldest queued keys, in order; with n > size only the last `size` stay."""
        keys = keys.detach()[-self.size :]
        slots = (self.pointer + torch.arange(len(keys), device=self.keys.device)) % self.size
        self.keys[slots] = keys.to(self.keys.dtype)
        self.pointer.copy_((self.pointer + len(keys)) % self.size)
