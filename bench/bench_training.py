"""Training benchmark: embedding quality and speed of every method with its default settings.

Prints a markdown table: kNN-5 and linear-probe accuracy of the embedding, training time, and the
images/second of `ml.training.train` next to a bare PyTorch loop on the same model, measured in
the same process just before and just after training (the CPU may be shared, so only numbers from
one run are compared with each other).

    .venv/bin/python bench/bench_training.py --dataset digits
    .venv/bin/python bench/bench_training.py --dataset fashion-mnist --methods ae,simclr --max-minutes 15
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ml import artifacts  # noqa: E402
from ml.datasets import ImageDataset, load_dataset  # noqa: E402
from ml.evaluation import evaluation_split, knn_accuracy, linear_probe_accuracy  # noqa: E402
from ml.methods import METHODS  # noqa: E402
from ml.progress import Stopped  # noqa: E402
from ml.training import TrainConfig, build_method, build_optimiser, encode, train  # noqa: E402


def bare_images_per_second(config: TrainConfig, dataset: ImageDataset, steps: int) -> float:
    """Images/second of the plainest loop on the same model and loss: slice, loss, backward, step."""
    torch.manual_seed(config.seed)
    method = build_method(config.validated(), dataset)
    optimiser = build_optimiser(method, config.lr, torch.device("cpu"))
    images = torch.from_numpy(dataset.images).permute(0, 3, 1, 2).contiguous()
    batch_size = min(config.batch_size, len(images))
    order = torch.randperm(len(images))
    method.train()
    start = time.perf_counter()
    for step in range(steps):
        begin = (step * batch_size) % (len(images) - batch_size + 1)
        loss = method.loss(images[order[begin : begin + batch_size]].float().div_(255.0))
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
    return steps * batch_size / (time.perf_counter() - start)


def evaluate_checkpoint(config: TrainConfig, dataset: ImageDataset, run_dir: Path) -> tuple[float | None, float | None, int]:
    """kNN / probe accuracy of the last finished epoch of a run stopped by --max-minutes."""
    checkpoint = torch.load(run_dir / artifacts.CHECKPOINT, weights_only=True)
    method = build_method(config.validated(), dataset)
    method.load_state_dict(checkpoint["model"])
    embeddings = encode(method, torch.from_numpy(dataset.images).permute(0, 3, 1, 2).contiguous())
    train_idx, test_idx = evaluation_split(dataset.labels, dataset.train_mask, config.seed)
    parts = (embeddings[train_idx], dataset.labels[train_idx], embeddings[test_idx], dataset.labels[test_idx])
    return knn_accuracy(*parts), linear_probe_accuracy(*parts), checkpoint["epoch"]


def bench_method(name: str, dataset: ImageDataset, max_minutes: float, baseline_steps: int, seed: int) -> dict:
    n_train = int(dataset.train_mask.sum()) if dataset.train_mask is not None else len(dataset)
    defaults = METHODS[name].defaults_for(dataset.image_shape, n_train)
    # The method parameters the product picks for these images (app.catalog.train_config does the same),
    # e.g. no reconstruction term for the tiny digits.
    method_params = METHODS[name].spec.param_defaults_for(dataset.image_shape)
    config = TrainConfig(dataset=dataset.name, method=name, seed=seed, method_params=method_params, **defaults)
    bare_before = bare_images_per_second(config, dataset, baseline_steps // 2)
    deadline = time.perf_counter() + max_minutes * 60
    row = {"method": name, **defaults}
    with tempfile.TemporaryDirectory() as run_dir:
        try:
            metrics = train(config, dataset, Path(run_dir), progress=lambda epoch, step, m: time.perf_counter() > deadline)
            row.update(knn=metrics["knn_accuracy"], probe=metrics["linear_probe_accuracy"], done=config.epochs,
                       seconds=metrics["train_seconds"], ips=metrics["images_per_second"])
        except Stopped:

            knn, probe, done = evaluate_checkpoint(config, dataset, Path(run_dir))
            checkpoint = torch.load(Path(run_dir) / artifacts.CHECKPOINT, weights_only=True)
            seconds = checkpoint["train_seconds"]
            row.update(knn=knn, probe=probe, done=done, seconds=seconds, ips=np.mean([r["images_per_second"] for r in checkpoint["history"]]))

    bare_after = bare_images_per_second(config, dataset, baseline_steps - baseline_steps // 2)
    row["bare_ips"] = (bare_before + bare_after) / 2
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--max-minutes", type=float, default=15.0, help="stop a method's training after this long (evaluates its last finished epoch)")
    parser.add_argument("--baseline-steps", type=int, default=40, help="steps of the bare PyTorch loop (half before, half after training)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--raw-pixels", action="store_true", help="also print the kNN-5 / probe of the raw pixels on the same split")
    args = parser.parse_args()

    # One thread count for the whole run, so train() and the bare loop are compared like for like;
    # by default one per idle core (the CPU may be shared with other busy processes).
    idle = max(1, min(os.cpu_count() or 1, (os.cpu_count() or 1) - round(os.getloadavg()[0])))
    os.environ.setdefault("LATENTMAP_TORCH_THREADS", str(idle))
    torch.set_num_threads(int(os.environ["LATENTMAP_TORCH_THREADS"]))
    dataset = load_dataset(args.dataset)
    load_before = os.getloadavg()[0]
    rows = [bench_method(name, dataset, args.max_minutes, args.baseline_steps, args.seed) for name in args.methods.split(",")]

    print(f"\n`{' '.join(sys.argv)}` — dataset {dataset.name} ({len(dataset)} images), torch threads {torch.get_num_threads()}, "
          f"load average {load_before:.1f} → {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs\n")
    print("| method | epochs (done/default) | batch | lr | dim | kNN-5 acc | linear probe | train s | train() img/s | bare loop img/s | ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    if args.raw_pixels:
        pixels = dataset.images.reshape(len(dataset), -1).astype(np.float32) / 255.0
        train_idx, test_idx = evaluation_split(dataset.labels, dataset.train_mask, args.seed)
        parts = (pixels[train_idx], dataset.labels[train_idx], pixels[test_idx], dataset.labels[test_idx])
        print(f"| raw pixels | – | – | – | {pixels.shape[1]} | {knn_accuracy(*parts):.4f} | {linear_probe_accuracy(*parts):.4f} | – | – | – | – |", flush=True)
    for row in rows:
        fmt = lambda v: "–" if v is None else f"{v:.4f}"  # noqa: E731
        print(f"| {row['method']} | {row['done']}/{row['epochs']} | {row['batch_size']} | {row['lr']:g} | {row['embedding_dim']} | {fmt(row['knn'])} | "
              f"{fmt(row['probe'])} | {row['seconds']:.0f} | {row['ips']:.0f} | {row['bare_ips']:.0f} | {row['ips'] / row['bare_ips']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
