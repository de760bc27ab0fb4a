"""The precision a run trains in: float32, or bfloat16 autocast where the hardware computes bf16 natively.

Only the contrastive methods use bf16: their networks run under autocast and their losses stay
float32 (`ml.losses.in_float32`). On a CPU with AVX-512 BF16 their Fashion-MNIST steps ran faster
(median of 3 rounds: moco 1.30×, byol 1.47×, simclr 1.02×) with the same validation kNN-5
(bench/bench_step.py, bench/bench_recipe.py --precision; BENCHMARKS.md, "Fifth pass"). Where bf16 is only
emulated (older CPUs) it would be slower, so those train in float32, as do the autoencoders, whose
pixel reconstructions want float32's precision.

Like the thread count, the precision is recorded in config.json and the checkpoint: a resumed run
keeps its precision, so stop + resume stays bit-identical.
"""
from __future__ import annotations

import contextlib
import os

import torch

from ml.ssl_health import CONTRASTIVE_METHODS

FLOAT32 = "float32"
BFLOAT16 = "bfloat16"
PRECISIONS = (FLOAT32, BFLOAT16)
ENV_VARIABLE = "LATENTMAP_PRECISION"


def native_bfloat16(device: torch.device) -> bool:
    """Whether `device` computes bfloat16 matrix products and convolutions in hardware."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())  # oneDNN: AVX-512 BF16 or AMX
        except (AttributeError, RuntimeError):
            return False
    return False


def choose_precision(method: str, device: torch.device, recorded: str | None = None) -> str:
    """`recorded` (a resumed run's) wins, then LATENTMAP_PRECISION, then bfloat16 for a contrastive
    method on a device with native bf16, else float32."""
    if recorded is not None:
        return recorded
    wanted = os.environ.get(ENV_VARIABLE)
    if wanted:
        if wanted not in PRECISIONS:
            raise ValueError(f"{ENV_VARIABLE} must be one of {', '.join(PRECISIONS)}, got {wanted!r}")
        return wanted
    return BFLOAT16 if method in CONTRASTIVE_METHODS and native_bfloat16(device) else FLOAT32


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """The context a training step's forward pass runs in: bf16 autocast, or nothing for float32."""
    if precision == BFLOAT16:
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
