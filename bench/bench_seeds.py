"""kNN-5 of a method's defaults over several seeds (each seed: initialisation, augmentations and the
stratified 80/20 split), so that defaults are judged on a mean, not on one 360-image test split.

    .venv/bin/python bench/bench_seeds.py --dataset digits --methods moco,byol --seeds 0-4 [--param KEY=VALUE ...]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ml.datasets import load_dataset  # noqa: E402
from ml.methods import METHOD_SPECS  # noqa: E402
from ml.params import parse_key_values  # noqa: E402
from ml.training import TrainConfig, train  # noqa: E402


def seed_range(text: str) -> list[int]:
    first, _, last = text.partition("-")
    return list(range(int(first), int(last or first) + 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--methods", default="moco,byol")
    parser.add_argument("--seeds", default="0-4", help="e.g. 0-4")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="a method parameter (repeatable)")
    args = parser.parse_args()
    os.environ.setdefault("LATENTMAP_TORCH_THREADS", "1")
    dataset = load_dataset(args.dataset)
    seeds, overrides = seed_range(args.seeds), parse_key_values(args.param)
    load_before = os.getloadavg()[0]
    rows = []
    for name in args.methods.split(","):
        n_train = int(dataset.train_mask.sum()) if dataset.train_mask is not None else len(dataset)
        defaults = METHOD_SPECS[name].defaults_for(dataset.image_shape, n_train)
        scores, seconds = [], 0.0
        for seed in seeds:
            started = time.perf_counter()
            with tempfile.TemporaryDirectory() as run_dir:
                # The method parameters the product picks for these images (app.catalog.train_config does the
                # same: no reconstruction term for the tiny digits), then the --param overrides.
                method_params = {**METHOD_SPECS[name].param_defaults_for(dataset.image_shape), **overrides}
                config = TrainConfig(dataset=dataset.name, method=name, seed=seed, method_params=method_params, **defaults)
                scores.append(train(config, dataset, Path(run_dir))["knn_accuracy"])
            seconds += time.perf_counter() - started
        rows.append((name, scores, seconds / len(seeds)))
    print(f"\n`{' '.join(sys.argv)}` — dataset {dataset.name}, torch threads {os.environ['LATENTMAP_TORCH_THREADS']}, "
          f"load average {load_before:.1f} → {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs\n")
    print("| method | " + " | ".join(f"seed {seed}" for seed in seeds) + " | mean | ≥ 0.97 | s per run |")
    print("|---|" + "---:|" * (len(seeds) + 3))
    for name, scores, seconds in rows:
        print(f"| {name} | " + " | ".join(f"{score:.4f}" for score in scores)
              + f" | {statistics.mean(scores):.4f} | {sum(score >= 0.97 for score in scores)}/{len(scores)} | {seconds:.0f} |")


if __name__ == "__main__":
    main()
