"""UMAP layout epochs on small data: seconds and trustworthiness (k = 10) for several `n_epochs`.

    .venv/bin/python bench/bench_umap_epochs.py [--seeds 3]

umap-learn runs 500 epochs below 10,000 points and 200 above. This measures what fewer epochs
cost in map quality on three sets below 10,000 points: the 1,797 digits' pixels, a digits
autoencoder embedding (trained here with the method's defaults), and 5,000 Fashion-MNIST test
images (PCA-32 of the pixels; /usr/share/datasets/fashion-mnist, Debian's dataset-fashion-mnist).
Every fit reuses one exact kNN graph per set, as a projection job does, and runs after a warm-up
fit so that no row pays numba's compilation. Prints a markdown table (median over seeds).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

EPOCHS = (500, 300, 200, 150, 100)


def digits_pixels() -> np.ndarray:
    from sklearn.datasets import load_digits

    return load_digits().data.astype(np.float32)


def digits_autoencoder() -> np.ndarray:
    from app import catalog
    from ml.datasets import load_dataset
    from ml.training import TrainConfig, train

    dataset = load_dataset("digits")
    config = catalog.train_config("digits", "ae", dataset.image_shape, len(dataset), {}, {})
    with tempfile.TemporaryDirectory() as folder:
        train(TrainConfig(**config), dataset, Path(folder))
        return np.load(Path(folder) / "embeddings.npy")


def fashion_pca(n: int = 5000) -> np.ndarray | None:
    import gzip

    from sklearn.decomposition import PCA

    path = Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")
    if not path.exists():
        return None
    with gzip.open(path) as file:
        pixels = np.frombuffer(file.read(), np.uint8, offset=16).reshape(-1, 784)[:n].astype(np.float32) / 255
    return PCA(32, random_state=0).fit_transform(pixels).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    from ml.analysis.neighbors import compute_knn, trustworthiness
    from ml.numba_cache import warm_up
    from ml.analysis.projection import make_projection

    warm_up()
    sets = {"digits pixels (1,797 × 64)": digits_pixels(), "digits AE embedding (1,797 × 32)": digits_autoencoder()}
    fashion = fashion_pca()
    if fashion is not None:
        sets["Fashion-MNIST test 5,000 (PCA-32)"] = fashion
    print(f"\n(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; medians over {args.seeds} seeds)\n")
    print("| data | n_epochs | fit (s) | trustworthiness | Δ trust vs 500 |")
    print("|---|---|---|---|---|")
    for name, x in sets.items():
        graph = compute_knn(x)
        baseline = None
        for epochs in EPOCHS:
            seconds, scores = [], []
            for seed in range(args.seeds):
                started = time.perf_counter()
                coords = make_projection("umap", {"n_epochs": epochs}, random_state=seed).fit(x, graph).embedding_
                seconds.append(time.perf_counter() - started)
                scores.append(trustworthiness(x, coords, graph, sample=len(x), seed=seed))
            trust = statistics.median(scores)
            baseline = trust if baseline is None else baseline
            print(f"| {name} | {epochs} | {statistics.median(seconds):.2f} | {trust:.4f} | {trust - baseline:+.4f} |", flush=True)


if __name__ == "__main__":
    main()
