"""Training-step throughput of the contrastive methods on Fashion-MNIST batches: float32 against bf16
autocast, and freed memory kept for the next step (`ml.cpu_memory`, as training does) against glibc's defaults.

Each (method, precision, memory) configuration runs in its own process (a fresh allocator and oneDNN
cache), in interleaved rounds so that a noisy neighbour hits every configuration alike; the table
gives the median of the rounds and the page faults per step. A step is what ml.training does per
batch: both views, the loss under `ml.precision.autocast`, backward, Adam and the EMA update.

    flock /tmp/latentmap-bench.lock .venv/bin/python bench/bench_step.py
    .venv/bin/python bench/bench_step.py --precisions bfloat16 --memory glibc,kept --rounds 5
    .venv/bin/python bench/bench_step.py --methods moco --rounds 5 --threads 1
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BATCH = 512
WARM_STEPS, TIMED_STEPS = 5, 35


MEMORY = ("kept", "glibc")  # freed memory kept for the next step (what training does), or glibc's defaults


def one_measurement(method_name: str, precision: str, memory: str, encoder: str, threads: int) -> tuple[float, float]:
    """(images per second, page faults per step) of `TIMED_STEPS` training steps after `WARM_STEPS`, in this process."""
    import resource

    import torch

    from ml.cpu_memory import freed_memory_kept
    from ml.datasets import load_dataset
    from ml.methods import METHODS
    from ml.training import build_optimiser, optimisation_step

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    dataset = load_dataset("fashion-mnist")
    images = torch.from_numpy(dataset.images[: BATCH * (WARM_STEPS + TIMED_STEPS)]).permute(0, 3, 1, 2).contiguous()
    method = METHODS[method_name](dataset.image_shape, 32, encoder, dataset.name)
    method.train()
    optimiser = build_optimiser(method, 2e-3, torch.device("cpu"))
    cpu = torch.device("cpu")

    def step(i: int) -> None:
        optimisation_step(method, optimiser, images[i * BATCH : (i + 1) * BATCH].float().div_(255.0), cpu, precision)
        method.after_step(i + 1, 1000)

    with freed_memory_kept() if memory == "kept" else contextlib.nullcontext():
        for i in range(WARM_STEPS):
            step(i)
        faults, started = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.perf_counter()
        for i in range(WARM_STEPS, WARM_STEPS + TIMED_STEPS):
            step(i)
        seconds = time.perf_counter() - started
    return TIMED_STEPS * BATCH / seconds, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / TIMED_STEPS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="simclr,moco,byol")
    parser.add_argument("--precisions", default="float32,bfloat16")
    parser.add_argument("--encoder", default="conv", help="the encoder each method trains (conv: the Fashion-MNIST default)")
    parser.add_argument("--memory", default="kept", help=f"comma-separated, of {', '.join(MEMORY)}")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--one", nargs=3, metavar=("METHOD", "PRECISION", "MEMORY"), help=argparse.SUPPRESS)  # a child process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_measurement(*args.one, args.encoder, args.threads)))
        return
    if unknown := set(args.memory.split(",")) - set(MEMORY):
        parser.error(f"--memory takes {', '.join(MEMORY)}, got {', '.join(sorted(unknown))}")

    configurations = [(method, precision, memory) for method in args.methods.split(",") for precision in args.precisions.split(",")
                      for memory in args.memory.split(",")]
    rates: dict[tuple[str, str, str], list[float]] = {configuration: [] for configuration in configurations}
    faults: dict[tuple[str, str, str], list[float]] = {configuration: [] for configuration in configurations}
    load_before = os.getloadavg()[0]
    for _ in range(args.rounds):
        for configuration in configurations:
            command = [sys.executable, __file__, "--one", *configuration, "--encoder", args.encoder, "--threads", str(args.threads)]
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            rate, faults_per_step = json.loads(output.strip().splitlines()[-1])
            rates[configuration].append(rate)
            faults[configuration].append(faults_per_step)
    print(f"\n`{' '.join(sys.argv)}` — {BATCH} Fashion-MNIST images per step, {args.encoder} encoder, {args.threads} torch threads, "
          f"median of {args.rounds} interleaved rounds, load average {load_before:.1f} → {os.getloadavg()[0]:.1f}\n")
    print("| method | precision | freed memory | img/s per step (median) | rounds | page faults per step | × the method's first row |")
    print("|---|---|---|---:|---|---:|---:|")
    for configuration in configurations:
        median = statistics.median(rates[configuration])
        baseline = statistics.median(rates[next(c for c in configurations if c[0] == configuration[0])])
        rounds = ", ".join(f"{rate:.0f}" for rate in rates[configuration])
        print(f"| {' | '.join(configuration)} | {median:.0f} | {rounds} | {statistics.median(faults[configuration]):,.0f} | {median / baseline:.2f}× |")

if __name__ == "__main__":
    main()
