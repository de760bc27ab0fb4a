"""Losses: NT-Xent (SimCLR), InfoNCE against a queue (MoCo), the negative-cosine loss (BYOL) and the
contractive penalty for the contractive autoencoder."""
from __future__ import annotations

import functools
from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F


def in_float32(loss: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    """Runs `loss` with autocast off, on float32 copies of its 16-bit tensor arguments (float64 stays).

    Under bfloat16 autocast (`ml.precision`) the encoders and heads compute in bf16, but its 8-bit
    mantissa cannot hold cosine similarities divided by a temperature: at τ = 0.05 logits near 20
    come in steps of 0.125. The contrastive losses are cheap next to the networks, so they keep float32.
    """

    @functools.wraps(loss)
    def float32_loss(*args: object, **kwargs: object) -> torch.Tensor:
        device = next(arg.device for arg in args if isinstance(arg, torch.Tensor))
        with torch.autocast(device.type, enabled=False):
            return loss(*(_at_least_float32(arg) for arg in args), **kwargs)

    return float32_loss


def _at_least_float32(value: object) -> object:
    if isinstance(value, torch.Tensor) and value.dtype in (torch.bfloat16, torch.float16):
        return value.float()
    return value


@in_float32
def nt_xent_loss(z_a: torch.Tensor, z_b: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """Normalised temperature-scaled cross entropy (SimCLR) for two views of the same batch.

    z_a, z_b: (B, D) projections of view a and view b; row i of each comes from the same image.
    Each of the 2B projections is classified against the other 2B − 1 (cosine similarity divided
    by `temperature`); its positive is the other view of its image. Returns the mean over all 2B.
    """
    if z_a.shape != z_b.shape or z_a.ndim != 2:
        raise ValueError(f"z_a and z_b must both be (B, D), got {tuple(z_a.shape)} and {tuple(z_b.shape)}")
    batch = z_a.shape[0]
    z = F.normalize(torch.cat([z_a, z_b]), dim=1)  # (2B, D)
    logits = z @ z.T / temperature  # (2B, 2B)
    logits.fill_diagonal_(float("-inf"))  # an item is never its own candidate
    positives = torch.cat([torch.arange(batch, 2 * batch), torch.arange(batch)]).to(z.device)
    return F.cross_entropy(logits, positives)


class NTXentLoss(nn.Module):
    """`nt_xent_loss` as a module holding its temperature."""

    def __init__(self, temperature: float = 0.5) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError("temperature must be > 0")
        self.temperature = temperature

    def forward(self, z_a: torch.Tensor, z_b: torch.Tensor) -> torch.Tensor:
        """z_a, z_b: (B, D) → scalar loss."""
        return nt_xent_loss(z_a, z_b, self.temperature)


@in_float32
def info_nce_loss(queries: torch.Tensor, keys: torch.Tensor, negatives: torch.Tensor, temperature: float = 0.2) -> torch.Tensor:
    """InfoNCE as in MoCo: each query is classified among its own key and every queued negative.

    queries, keys: (B, D), row i of each from the same image; negatives: (K, D) past keys.
    Vectors are L2-normalised here; logits are cosine similarities divided by `temperature`.
    Returns the mean over the B queries of −log(e^{q·k/τ} / (e^{q·k/τ} + Σ_n e^{q·n/τ})).
    """
    if queries.shape != keys.shape or queries.ndim != 2 or negatives.ndim != 2 or negatives.shape[1] != queries.shape[1]:
        raise ValueError(f"queries and keys must be (B, D) and negatives (K, D), got {tuple(queries.shape)}, "
                         f"{tuple(keys.shape)} and {tuple(negatives.shape)}")
    queries = F.normalize(queries, dim=1) / temperature  # scaling the B queries, not the B × K logits
    return _QueueCrossEntropy.apply(queries, F.normalize(keys, dim=1), F.normalize(negatives, dim=1))


class _QueueCrossEntropy(torch.autograd.Function):
    """Mean over the rows of −log softmax([q·k, q·n_1, …, q·n_K])[0], for queries q (B, D), keys k (B, D)
    and negatives n (K, D): MoCo's cross-entropy with the positive in column 0.

    Written out rather than `F.cross_entropy(torch.cat([positive, q @ n.T]), 0)`, which copies the
    B × (1 + K) logits into one matrix, keeps their log-softmax, fills a B × (1 + K) gradient with
    zeros to scatter the targets in, and walks it twice more in the backward pass. Here the B × K
    exponentials are made in place and kept, and the backward pass is one matrix product scaled per
    row. MoCo's loss on Fashion-MNIST batches (1,024 queries of 64 dimensions, 2,048 negatives), forward
    and backward on two cores: 9.2–9.9 ms through `F.cross_entropy`, 6.7–7.0 ms here.
    """

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, queries: torch.Tensor, keys: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
        positive = (queries * keys).sum(dim=1)  # (B,)
        exponentials = queries @ negatives.T  # (B, K) logits, made exponentials in place below
        top = torch.maximum(exponentials.amax(dim=1), positive)  # each row's largest logit, for a stable exp
        exponentials.sub_(top[:, None]).exp_()
        positive_exponential = (positive - top).exp()
        total = exponentials.sum(dim=1) + positive_exponential  # the softmax's denominators, over e^{−top}
        ctx.save_for_backward(queries, keys, negatives, exponentials, positive_exponential, total)
        return (top + total.log() - positive).mean()

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        queries, keys, negatives, exponentials, positive_exponential, total = ctx.saved_tensors
        per_row = grad / len(queries)
        softmax_scale = per_row / total  # row i's softmax is its exponentials / total[i]
        positive_grad = positive_exponential * softmax_scale - per_row  # (softmax of the positive − 1) / B
        grad_queries = grad_keys = grad_negatives = None
        if ctx.needs_input_grad[0]:
            grad_queries = (exponentials @ negatives) * softmax_scale[:, None] + positive_grad[:, None] * keys
        if ctx.needs_input_grad[1]:
            grad_keys = positive_grad[:, None] * queries
        if ctx.needs_input_grad[2]:
            grad_negatives = (exponentials * softmax_scale[:, None]).T @ queries
        return grad_queries, grad_keys, grad_negatives


@in_float32
def negative_cosine_loss(predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """BYOL's normalised MSE: mean over the batch of ‖p/‖p‖ − z/‖z‖‖² = 2 − 2·cos(p, z).

    predictions, targets: (B, D); 0 when every pair points the same way, 4 when opposite.
    """
    if predictions.shape != targets.shape or predictions.ndim != 2:
        raise ValueError(f"predictions and targets must both be (B, D), got {tuple(predictions.shape)} and {tuple(targets.shape)}")
    return (2.0 - 2.0 * F.cosine_similarity(predictions, targets, dim=1)).mean()


def contractive_penalty(encoder: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of ‖∂encoder(x)/∂x‖²_F, the squared Frobenius norm of each sample's Jacobian.

    images: (B, C, H, W); encoder maps (B, C, H, W) → (B, d) with no coupling between samples.
    The closed form Σ_j (h_j(1 − h_j))² ‖W_j‖² only holds for a one-layer sigmoid encoder; for
    deeper encoders the exact Jacobian takes d reverse-mode passes, which `torch.func.jacrev`
    batches with `vmap` (d is the small side: d ≪ C·H·W, so reverse mode beats forward mode).
    The result stays differentiable with respect to the encoder's parameters.
    """

    def encode_one(image: torch.Tensor) -> torch.Tensor:  # (C, H, W) → (d,)
        return encoder(image.unsqueeze(0)).squeeze(0)

    jacobians = torch.func.vmap(torch.func.jacrev(encode_one))(images)  # (B, d, C, H, W)
    return jacobians.pow(2).flatten(1).sum(dim=1).mean()
