"""NT-Xent against a hand-written double loop; the contractive penalty against autograd's Jacobian."""
from __future__ import annotations

import math

import pytest
import torch

from ml.losses import NTXentLoss, contractive_penalty, nt_xent_loss
from ml.models.encoders import ConvEncoder, MLPEncoder


def reference_nt_xent(z_a: torch.Tensor, z_b: torch.Tensor, temperature: float) -> float:
    """SimCLR's loss written out pair by pair (Chen et al. 2020, eq. 1 averaged over all 2B anchors)."""
    z = [v / v.norm() for v in torch.cat([z_a, z_b])]
    n, batch = len(z), len(z_a)
    total = 0.0
    for i in range(n):
        positive = (i + batch) % n
        denominator = 0.0
        for k in range(n):
            if k != i:
                denominator += math.exp(float(z[i] @ z[k]) / temperature)
        total += -math.log(math.exp(float(z[i] @ z[positive]) / temperature) / denominator)
    return total / n


@pytest.mark.parametrize("temperature", [0.1, 0.5, 1.0])
def test_nt_xent_matches_reference_loop(temperature: float) -> None:
    generator = torch.Generator().manual_seed(0)
    z_a, z_b = torch.randn(6, 5, generator=generator, dtype=torch.float64), torch.randn(6, 5, generator=generator, dtype=torch.float64)
    assert nt_xent_loss(z_a, z_b, temperature).item() == pytest.approx(reference_nt_xent(z_a, z_b, temperature), rel=1e-10)
    assert NTXentLoss(temperature)(z_a, z_b).item() == pytest.approx(reference_nt_xent(z_a, z_b, temperature), rel=1e-10)


def test_nt_xent_is_low_for_matching_views_and_rejects_bad_shapes() -> None:
    z = torch.eye(4) * 10
    assert nt_xent_loss(z, z, 0.1).item() < 1e-3  # each positive is the only similar item
    with pytest.raises(ValueError):
        nt_xent_loss(torch.zeros(3, 2), torch.zeros(4, 2))
    with pytest.raises(ValueError):
        NTXentLoss(0.0)


def autograd_penalty(encoder: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    norms = [torch.autograd.functional.jacobian(lambda x: encoder(x.unsqueeze(0)).squeeze(0), image).pow(2).sum() for image in images]
    return torch.stack(norms).mean()


@pytest.mark.parametrize("encoder", [MLPEncoder((1, 4, 4), 3, hidden=(8,)), ConvEncoder((1, 8, 8), 3, widths=(4, 8))])
def test_contractive_penalty_matches_autograd_jacobian(encoder: torch.nn.Module) -> None:
    torch.manual_seed(0)
    encoder = encoder.double()
    shape = (3, 1, 4, 4) if isinstance(encoder, MLPEncoder) else (3, 1, 8, 8)
    images = torch.rand(shape, dtype=torch.float64)
    penalty = contractive_penalty(encoder, images)
    assert penalty.item() == pytest.approx(autograd_penalty(encoder, images).item(), rel=1e-10)
    assert penalty.item() > 0


def test_contractive_penalty_is_closed_form_for_a_linear_encoder_and_differentiable() -> None:
    linear = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(6, 2)).double()
    images = torch.rand(5, 1, 2, 3, dtype=torch.float64)
    penalty = contractive_penalty(linear, images)
    # A linear map's Jacobian is its weight matrix, whatever the input.
    assert penalty.item() == pytest.approx(linear[1].weight.pow(2).sum().item(), rel=1e-12)
    penalty.backward()
    assert torch.allclose(linear[1].weight.grad, 2 * linear[1].weight)
