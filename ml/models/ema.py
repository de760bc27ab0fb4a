"""Momentum (EMA) copies of networks: MoCo's key encoder and BYOL's target network.

Hand-written because it is three lines: `torch.optim.swa_utils.AveragedModel` would do the
averaging but keeps its own copy inside a wrapper (and a step counter) that the checkpoint and
the loss would then have to reach through.
"""
from __future__ import annotations

import copy
import math

import torch
from torch import nn


def momentum_copy(online: nn.Module) -> nn.Module:
    """A copy of `online` that gradients never reach (its parameters do not require grad)."""
    target = copy.deepcopy(online)
    for parameter in target.parameters():
        parameter.requires_grad_(False)
    return target


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """target ← momentum · target + (1 − momentum) · online, parameter by parameter.

    Buffers (batch-norm running statistics) are not averaged: the target computes its own in its
    forward passes, as in MoCo and BYOL.
    """
    targets, onlines = list(target.parameters()), list(online.parameters())
    if len(targets) != len(onlines):
        raise ValueError(f"the target has {len(targets)} parameters and the online network {len(onlines)}")
    torch._foreach_lerp_(targets, onlines, 1.0 - momentum)  # one call for every parameter


def cosine_momentum(base: float, step: int, total_steps: int) -> float:
    """BYOL's schedule: τ = 1 − (1 − base) · (cos(π · step / total_steps) + 1) / 2, from `base` at step 0 to 1 at the end."""
    return 1.0 - (1.0 - base) * (math.cos(math.pi * step / max(total_steps, 1)) + 1.0) / 2.0
