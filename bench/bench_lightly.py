"""latentmap's contrastive methods side by side with lightly's own SimCLR pipeline, in one run.

The latentmap side trains each method with its Fashion-MNIST defaults (`ml.training.train`). The
lightly side is lightly 1.6's SimCLR example pipeline (`SimCLRTransform` on PIL images in a
`DataLoader`, `SimCLRProjectionHead`, `NTXentLoss`, SGD lr 0.06) on the *same* encoder (the
batch-norm conv net latentmap's simclr uses) for the same wall-clock budget as latentmap's simclr
training. Both report images/s and kNN-5 of the 32-d encoder output on the 10k test split against
the 60k train split, with `ml.evaluation.knn_accuracy`.

lightly is not a latentmap dependency: it lives in its own environment, which this script makes
on first use (bench/.venv-lightly: torch, torchvision, lightly 1.6, scikit-learn) and runs the
lightly side in as a subprocess (`--side lightly`).

    LATENTMAP_TORCH_THREADS=1 flock /tmp/latentmap-bench.lock .venv/bin/python bench/bench_lightly.py
    .venv/bin/python bench/bench_lightly.py --methods simclr --seconds 120     # a short check
    .venv/bin/python bench/bench_lightly.py --keep /tmp/runs    # keep the runs for bench_analysis.py fmnist --embedding
    .venv/bin/python bench/bench_lightly.py --throughput-rounds 5   # images/s only, in interleaved rounds
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ml.datasets import ImageDataset, load_dataset  # noqa: E402
from ml.evaluation import cosine_knn_accuracy, knn_accuracy  # noqa: E402
from ml.models.encoders import ConvEncoder  # noqa: E402

LIGHTLY_VENV = ROOT / "bench" / ".venv-lightly"
LIGHTLY_PACKAGES = ("torch==2.14.1", "torchvision==0.29.1", "lightly==1.6.0", "scikit-learn", "pillow")
EMBEDDING_DIM = 32


def knn_on_test_split(embeddings: np.ndarray, dataset: ImageDataset, metric=knn_accuracy) -> float:
    """kNN-5 of the official test images against the official train images (`metric`: Euclidean or cosine)."""
    train, test = dataset.train_mask, ~dataset.train_mask
    return metric(embeddings[train], dataset.labels[train], embeddings[test], dataset.labels[test])


# ----------------------------------------------------------------------------------------------
# lightly side (runs inside bench/.venv-lightly)


def lightly_pipeline(batch_size: int, workers: int, seed: int):
    """lightly's SimCLR example on latentmap's conv encoder: (dataset, encoder, loader, step), where
    step(views) trains on one batch of the loader, (view_a, view_b), and returns its image count."""
    from lightly.loss import NTXentLoss
    from lightly.models.modules import SimCLRProjectionHead
    from lightly.transforms import SimCLRTransform
    from PIL import Image
    from torch import nn

    torch.manual_seed(seed)
    dataset = load_dataset("fashion-mnist")
    train_images = dataset.images[dataset.train_mask][..., 0]  # (60000, 28, 28) uint8

    class PilImages(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return len(train_images)

        def __getitem__(self, index: int):
            return transform(Image.fromarray(train_images[index], mode="L"))

    # The example's transform at 28 px; grey images are not normalised with ImageNet's 3-channel
    # statistics (they have one channel), so the encoder sees [0, 1] pixels as in latentmap.
    transform = SimCLRTransform(input_size=28, normalize=None)
    loader = torch.utils.data.DataLoader(PilImages(), batch_size=batch_size, shuffle=True, drop_last=True, num_workers=workers,
                                         persistent_workers=workers > 0)

    encoder = ConvEncoder(dataset.image_shape, EMBEDDING_DIM, batch_norm=True)
    model = nn.Sequential(encoder, SimCLRProjectionHead(EMBEDDING_DIM, 512, 128))
    criterion = NTXentLoss()
    optimiser = torch.optim.SGD(model.parameters(), lr=0.06)
    model.train()

    def step(views) -> int:
        view_a, view_b = views
        loss = criterion(model(view_a), model(view_b))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        return len(view_a)

    return dataset, encoder, loader, step


def lightly_side(seconds: float, batch_size: int, workers: int, seed: int) -> dict:
    """lightly's SimCLR example on latentmap's conv encoder for `seconds` of training: img/s and kNN-5."""
    dataset, encoder, loader, step = lightly_pipeline(batch_size, workers, seed)
    images_seen, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for views in loader:
            images_seen += step(views)
            if time.perf_counter() - start >= seconds:
                break
    train_seconds = time.perf_counter() - start
    encoder.eval()
    with torch.inference_mode():
        pixels = torch.from_numpy(dataset.images).permute(0, 3, 1, 2).float().div_(255.0)
        embeddings = torch.cat([encoder(pixels[i : i + 2048]) for i in range(0, len(pixels), 2048)]).numpy()
    return {"side": "lightly simclr (example pipeline)", "knn": knn_on_test_split(embeddings, dataset),
            "knn_cosine": knn_on_test_split(embeddings, dataset, cosine_knn_accuracy), "seconds": train_seconds,
            "ips": images_seen / train_seconds, "epochs": images_seen / int(dataset.train_mask.sum())}


def lightly_throughput(steps: int, warm_steps: int, batch_size: int, workers: int, seed: int) -> float:
    """Images/s of `steps` batches of lightly's pipeline, data loading included, after `warm_steps` batches."""
    _, _, loader, step = lightly_pipeline(batch_size, workers, seed)
    batches = iter(loader)
    for _ in range(warm_steps):
        step(next(batches))
    started, images = time.perf_counter(), 0
    for _ in range(steps):
        images += step(next(batches))
    return images / (time.perf_counter() - started)


# ----------------------------------------------------------------------------------------------
# latentmap side (runs in latentmap's own environment)


def latentmap_side(method: str, dataset: ImageDataset, seed: int, epochs: int = 0, keep: Path | None = None) -> dict:
    """One latentmap method trained with its defaults (or `epochs` epochs, for a quick check): img/s and kNN-5.

    keep: a folder to leave the run in (keep/<method>), e.g. for bench_analysis.py's `--embedding`.
    """
    from ml import artifacts
    from ml.methods import METHODS
    from ml.training import TrainConfig, train

    defaults = METHODS[method].defaults_for(dataset.image_shape, int(dataset.train_mask.sum()))
    config = TrainConfig(dataset=dataset.name, method=method, seed=seed, **{**defaults, "snapshots": 0, "epochs": epochs or defaults["epochs"]})
    with tempfile.TemporaryDirectory() as scratch:
        run_dir = keep / method if keep else Path(scratch)
        run_dir.mkdir(parents=True, exist_ok=True)
        metrics = train(config, dataset, run_dir)
        precision = json.loads((run_dir / artifacts.CONFIG).read_text())["precision"]
    return {"side": f"latentmap {method}", "knn": metrics["knn_accuracy"], "knn_cosine": metrics["knn_accuracy_cosine"], "seconds": metrics["train_seconds"],
            "ips": metrics["images_per_second"], "epochs": config.epochs, "precision": precision}


def ensure_lightly_venv() -> Path:
    python = LIGHTLY_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(LIGHTLY_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *LIGHTLY_PACKAGES], check=True)
    return python


def last_json_line(command: list[str]):  # noqa: ANN201
    """Run `command` and parse the JSON on the last line of its standard output."""
    return json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])


def run_lightly(side: str, batch_size: int, workers: int, seed: int, *options: str):  # noqa: ANN201
    """This script's `--side SIDE` in bench/.venv-lightly; its JSON answer."""
    return last_json_line([str(ensure_lightly_venv()), __file__, "--side", side, "--batch", str(batch_size),
                           "--workers", str(workers), "--seed", str(seed), *options])


def throughput_rounds(methods: list[str], rounds: int, steps: int, batch_size: int, workers: int, seed: int) -> None:
    """images/s of lightly's pipeline and of each latentmap method's training step (bench_step.py, in
    the precision the product picks here, with freed memory kept as training keeps it), in interleaved
    rounds: this shared machine's speed drifts by ±25 % over minutes, so runs minutes apart compare
    the machine as much as the pipelines."""
    from ml.precision import choose_precision

    threads = torch.get_num_threads()
    precisions = {method: choose_precision(method, torch.device("cpu")) for method in methods}
    rates: dict[str, list[float]] = {"lightly": [], **{method: [] for method in methods}}
    load_before = os.getloadavg()[0]
    for _ in range(rounds):
        rates["lightly"].append(run_lightly("lightly-throughput", batch_size, workers, seed, "--steps", str(steps)))
        for method in methods:
            command = [sys.executable, str(ROOT / "bench" / "bench_step.py"), "--one", method, precisions[method], "kept", "--encoder", "conv",
                       "--threads", str(threads)]
            rates[method].append(last_json_line(command)[0])  # (images/s, page faults per step)
    lightly = statistics.median(rates["lightly"])
    print(f"\n`{' '.join(sys.argv)}` — Fashion-MNIST batches of {batch_size}, torch threads {threads}, lightly DataLoader workers {workers}, "
          f"median of {rounds} interleaved rounds, load average {load_before:.1f} → {os.getloadavg()[0]:.1f}\n")
    print("| pipeline | precision | img/s (median) | rounds | × lightly |")
    print("|---|---|---:|---|---:|")
    for name, values in rates.items():
        median = statistics.median(values)
        label = "lightly simclr (example pipeline, data loading included)" if name == "lightly" else f"latentmap {name} (training step, views included)"
        print(f"| {label} | {precisions.get(name, 'float32')} | {median:.0f} | {', '.join(f'{v:.0f}' for v in values)} | {median / lightly:.1f}× |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", choices=("both", "lightly", "lightly-throughput"), default="both")
    parser.add_argument("--methods", default="simclr,moco,byol", help="latentmap methods to train with their defaults")
    parser.add_argument("--seconds", type=float, default=0, help="lightly's budget; 0 = latentmap simclr's training time")
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers on the lightly side")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=0, help="latentmap epochs instead of each method's default (a quick check)")
    parser.add_argument("--keep", type=Path, help="a folder to keep each latentmap run in (KEEP/<method>), for bench_analysis.py --embedding")
    parser.add_argument("--throughput-rounds", type=int, default=0,
                        help="instead of training runs: images/s only, lightly's pipeline and each method's step in this many interleaved rounds")
    parser.add_argument("--steps", type=int, default=20, help="lightly's timed batches per throughput round (after 3 warm-up batches)")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("LATENTMAP_TORCH_THREADS", str(os.cpu_count() or 1))))
    if args.side == "lightly":
        print(json.dumps(lightly_side(args.seconds, args.batch, args.workers, args.seed)))
        return
    if args.side == "lightly-throughput":
        print(json.dumps(lightly_throughput(args.steps, 3, args.batch, args.workers, args.seed)))
        return
    if args.throughput_rounds:
        throughput_rounds(args.methods.split(","), args.throughput_rounds, args.steps, args.batch, args.workers, args.seed)
        return

    dataset = load_dataset("fashion-mnist")
    load_before = os.getloadavg()[0]
    rows = [latentmap_side(method, dataset, args.seed, args.epochs, args.keep) for method in args.methods.split(",")]
    simclr = next((row for row in rows if row["side"] == "latentmap simclr"), None)
    budget = args.seconds or (simclr["seconds"] if simclr else 0)
    if not budget:
        parser.error("--seconds is needed when simclr is not among --methods")
    lightly = run_lightly("lightly", args.batch, args.workers, args.seed, "--seconds", str(budget))

    print(f"\n`{' '.join(sys.argv)}` — Fashion-MNIST, kNN-5 of the 32-d encoder output (10k test vs 60k train), torch threads "
          f"{torch.get_num_threads()}, lightly DataLoader workers {args.workers}, load average {load_before:.1f} → {os.getloadavg()[0]:.1f}\n")
    pixels = dataset.images.reshape(len(dataset), -1).astype(np.float32) / 255.0
    print("| pipeline | precision | epochs | train s | img/s | × lightly img/s | kNN-5 | kNN-5, cosine |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    print(f"| raw pixels (784-d) | – | – | – | – | – | {knn_on_test_split(pixels, dataset):.4f} | {knn_on_test_split(pixels, dataset, cosine_knn_accuracy):.4f} |")
    for row in [*rows, {**lightly, "precision": "float32"}]:
        print(f"| {row['side']} | {row['precision']} | {row['epochs']:.1f} | {row['seconds']:.0f} | {row['ips']:.0f} | {row['ips'] / lightly['ips']:.1f}× | {row['knn']:.4f} | {row['knn_cosine']:.4f} |",
              flush=True)


if __name__ == "__main__":
    main()
