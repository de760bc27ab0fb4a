"""Imports of embeddings computed elsewhere (issue 11); prints markdown tables for BENCHMARKS.md.

    flock /tmp/latentmap-bench.lock .venv/bin/python bench/bench_import.py million   # 1,000,000 × 16 + labels + x/y
    flock /tmp/latentmap-bench.lock .venv/bin/python bench/bench_import.py fmnist    # 70k Fashion-MNIST with images

Each import is `latentmap import FILE --json` in a child process on a fresh data directory: the
seconds are its wall time (reading, checking, landing the run, the import job: scores, x/y as a
projection), peak RSS is the child's (getrusage). The input file is written first and not timed.
`fmnist`: the embedding is PCA-50 of the pixels, x/y its first two components, images as PNG
bytes in a {bytes, path} column (Hugging Face's layout): the map is browsable when the command returns.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
LATENTMAP = Path(sys.executable).parent / "latentmap"


def timed_import(path: Path, data_dir: Path) -> tuple[float, float, dict]:
    """(seconds, peak RSS in MiB of the child, its --json answer)."""
    started = time.perf_counter()
    result = subprocess.run([str(LATENTMAP), "import", str(path), "--json", "--data-dir", str(data_dir)],
                            capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"import failed: {result.stderr.strip()}")
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return seconds, peak_mib, json.loads(result.stdout.strip().splitlines()[-1])


def table(title: str, header: list[str], rows: list[list[object]]) -> None:
    print(f"\n### {title}\n")
    print(f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; the machine is shared)\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(f"{value:.2f}" if isinstance(value, float) else str(value) for value in row) + " |")
    sys.stdout.flush()


def million(n: int, dim: int, workspace: Path) -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=4.0, size=(20, dim)).astype(np.float32)
    classes = rng.integers(0, 20, size=n)
    embedding = centres[classes] + rng.normal(size=(n, dim)).astype(np.float32)
    path = workspace / "million.parquet"
    pq.write_table(pa.table({
        "embedding": pa.FixedSizeListArray.from_arrays(pa.array(embedding.reshape(-1)), dim),
        "label": pa.array([f"class {k}" for k in range(20)])
                 .take(pa.array(classes)),
        "x": embedding[:, 0], "y": embedding[:, 1]}), path)
    seconds, peak, answer = timed_import(path, workspace / "data")
    table(f"Import of {n:,} × {dim} from Parquet with labels and x/y (target ≤ 120 s)",
          ["points", "file MB", "seconds", "peak RSS MiB", "knn_accuracy (50k sample)", "target met"],
          [[f"{n:,}", round(path.stat().st_size / 1e6, 1), seconds, round(peak), answer["knn_accuracy"],
            "yes" if seconds <= 120 else "no"]])


def fmnist(workspace: Path) -> None:
    from PIL import Image
    from sklearn.decomposition import PCA

    from ml.datasets import load_dataset

    dataset = load_dataset("fashion-mnist", download=False)
    pixels = dataset.images.reshape(len(dataset), -1).astype(np.float32) / 255.0
    embedding = PCA(n_components=50, random_state=0).fit_transform(pixels).astype(np.float32)

    def png(image: np.ndarray) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(image[..., 0]).save(buffer, format="PNG")
        return buffer.getvalue()

    images = pa.StructArray.from_arrays([pa.array([png(image) for image in dataset.images], pa.binary()),
                                         pa.array([f"{i}.png" for i in range(len(dataset))])], names=["bytes", "path"])
    path = workspace / "fmnist.parquet"
    pq.write_table(pa.table({"embedding": pa.FixedSizeListArray.from_arrays(pa.array(embedding.reshape(-1)), 50),
                             "label": [dataset.class_names[k] for k in dataset.labels], "image": images,
                             "x": embedding[:, 0], "y": embedding[:, 1]}), path)
    seconds, peak, answer = timed_import(path, workspace / "data")
    table("Import of Fashion-MNIST (70,000 × 50, PCA of the pixels) as Parquet with PNG images, labels and x/y:"
          " seconds to a browsable map",
          ["points", "file MB", "seconds to the map", "peak RSS MiB", "knn_accuracy", "has_images"],
          [[f"{answer['n']:,}", round(path.stat().st_size / 1e6, 1), seconds, round(peak), answer["knn_accuracy"],
            answer["has_images"]]])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("case", choices=("million", "fmnist"))
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="latentmap-bench-import-") as workspace:
        if args.case == "million":
            million(args.n, args.dim, Path(workspace))
        else:
            fmnist(Path(workspace))


if __name__ == "__main__":
    main()
