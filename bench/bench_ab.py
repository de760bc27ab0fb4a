"""A/B of one change to a contrastive training step, measured in one process: two copies of the method
(the same seed) take turns, step by step, so that the host's slow phases hit both alike.

Separate processes (bench_step.py) compare the machine as much as the code: this host runs some
minutes ~30 % slower than others, and a process can start in either phase. Here variant B is the
product's step with one part switched back or off; the ratio is the median over paired steps of
A's time / B's time, so > 1 means the product (A) is faster.

    flock /tmp/latentmap-bench.lock .venv/bin/python bench/bench_ab.py --method moco --variant bf16-conv-weight-grad
    flock /tmp/latentmap-bench.lock .venv/bin/python bench/bench_ab.py --method byol --variant no-decoder --steps 80
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ml.cpu_memory import freed_memory_kept  # noqa: E402
from ml.datasets import load_dataset  # noqa: E402
from ml.methods import METHODS  # noqa: E402
from ml.methods.contrastive import ContrastiveMethod  # noqa: E402
from ml.models.conv_layers import Float32WeightGradConv2d  # noqa: E402
from ml.training import build_optimiser, optimisation_step  # noqa: E402

BATCH = 512
CPU = torch.device("cpu")


def bf16_conv_weight_grad(method: ContrastiveMethod) -> None:
    """The inner convolutions as plain nn.Conv2d: weight gradients from oneDNN's bf16 kernel."""
    for layer in method.modules():
        if type(layer) is Float32WeightGradConv2d:
            layer.__class__ = nn.Conv2d


def no_decoder(method: ContrastiveMethod) -> None:
    """No reconstruction term: what the decoder costs."""
    method.decoder = None


VARIANTS: dict[str, Callable[[ContrastiveMethod], None]] = {"none": lambda method: None, "bf16-conv-weight-grad": bf16_conv_weight_grad,
                                                            "no-decoder": no_decoder}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="moco", choices=("simclr", "moco", "byol"))
    parser.add_argument("--variant", default="none", choices=sorted(VARIANTS), help="what B changes (none: an A/A check of the bench)")
    parser.add_argument("--steps", type=int, default=60, help="timed steps of each copy, after 6 warm-up steps")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    dataset = load_dataset("fashion-mnist")
    images = torch.from_numpy(dataset.images[: BATCH * 40]).permute(0, 3, 1, 2).contiguous()

    def build(variant: str) -> tuple[ContrastiveMethod, torch.optim.Optimizer]:
        torch.manual_seed(0)
        method = METHODS[args.method](dataset.image_shape, 32, "conv", dataset.name).train()
        VARIANTS[variant](method)
        return method, build_optimiser(method, 2e-3, CPU)

    copies = [build("none"), build(args.variant)]

    def step(copy: int, i: int) -> float:
        method, optimiser = copies[copy]
        batch = images[(i % 40) * BATCH : (i % 40 + 1) * BATCH].float().div_(255.0)
        started = time.perf_counter()
        optimisation_step(method, optimiser, batch, CPU, "bfloat16")
        method.after_step(i + 1, 1000)
        return time.perf_counter() - started

    seconds: list[list[float]] = [[], []]
    with freed_memory_kept():
        for i in range(6):
            step(0, i), step(1, i)
        for i in range(args.steps):
            for copy in (0, 1) if i % 2 == 0 else (1, 0):  # alternate who goes first
                seconds[copy].append(step(copy, i))
    a, b = (BATCH / statistics.median(times) for times in seconds)
    ratio = statistics.median(b_time / a_time for a_time, b_time in zip(*seconds))
    print(f"`{' '.join(sys.argv)}`: {args.method}, A (the product) {a:,.0f} img/s, B ({args.variant}) {b:,.0f} img/s; "
          f"A is {ratio:.3f}× as fast as B (median of {args.steps} paired steps)")


if __name__ == "__main__":
    main()
