"""Issue 13's measurements on Fashion-MNIST (70,000 images): the epoch timeline, cluster stability
and decoder latency, through the same job functions and HTTP endpoints the dashboard uses.

    flock /tmp/latentmap-bench.lock .venv/bin/python bench/bench_insights.py [--epochs 8] [--snapshots 8]
          [--independent-sample 10000] [--repeats 10] [--requests 100] [--data-dir DIR]

1. Trains an autoencoder (`--epochs`, `--snapshots`; the MLP of 28 px grey images) in-process as
   `latentmap train` does, then a UMAP map (default parameters) and k-means (k = 10) on that map.
2. Timeline: the t-SNE timeline job on every snapshot at full size (seconds). The displacement ratio
   aligned / independent (mean distance a point moves between consecutive frames, each frame centred
   and scaled to unit RMS radius) on the first `--independent-sample` points of the snapshots, since
   independent full-size t-SNEs of every snapshot would double the cost (0 = full size).
3. Stability: the stability job with `--repeats` repeats of that k-means on the UMAP map (seconds).
4. Decoder: `--requests` GET /decode at random positions on the UMAP map and GET /interpolate
   (steps 8) between random points, over HTTP (TestClient on the real app), after one warm-up
   request each: p50 / p95 latency in ms.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app import catalog, tasks  # noqa: E402
from app.dataset_source import open_dataset  # noqa: E402
from app.registry import Registry  # noqa: E402
from app.settings import Settings  # noqa: E402


def run_here(registry: Registry, data_dir: Path, job, **extra) -> dict:  # noqa: ANN001, ANN003
    """Run a queued job in this process (as the CLI does); its result, failing loudly."""
    context = tasks.JobContext(registry=registry, job=job, data_dir=data_dir, **extra)
    started = time.perf_counter()
    final = tasks.run_job(context)
    if final.status != "succeeded":
        raise SystemExit(f"{job.kind} job failed: {final.error}")
    return {**context.result.get("output", {}), "wall_seconds": time.perf_counter() - started}


def percentiles(seconds: list[float]) -> str:
    ms = np.array(seconds) * 1000
    return f"p50 {np.percentile(ms, 50):.1f} ms, p95 {np.percentile(ms, 95):.1f} ms (n = {len(ms)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--snapshots", type=int, default=8)
    parser.add_argument("--independent-sample", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args()
    os.environ.setdefault("LATENTMAP_TORCH_THREADS", "1")
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="latentmap-insights-"))
    settings = Settings(data_dir=data_dir, warm_up=False, workers=1)
    registry = Registry(settings.registry_path).open()
    print(f"data dir {data_dir}; load average {os.getloadavg()[0]:.1f} at start", flush=True)

    dataset = open_dataset(args.dataset, registry, None)
    config = catalog.train_config(args.dataset, "ae", dataset.image_shape, len(dataset),
                                  {"epochs": args.epochs, "snapshots": args.snapshots}, {})
    run_id, job = tasks.queue_training(registry, config, data_dir, status="running", worker_pid=os.getpid())
    trained = run_here(registry, data_dir, job, dataset=dataset)
    print(f"trained ae {args.epochs} epochs on {len(dataset)} images in {trained['wall_seconds']:.0f} s"
          f" (kNN accuracy {trained['knn_accuracy']:.4f})", flush=True)
    run_dir = data_dir / "runs" / run_id

    projection_id, job = tasks.queue_projection(registry, run_id, "umap", catalog.validate_projection("umap", {}), 0,
                                                status="running", worker_pid=os.getpid())
    umap_meta = run_here(registry, data_dir, job)
    print(f"UMAP map {umap_meta['wall_seconds']:.0f} s, trustworthiness {umap_meta['trustworthiness']:.4f},"
          f" neighbourhood preservation {umap_meta['neighbourhood_preservation']:.4f}", flush=True)
    clustering_id, job = tasks.queue_clustering(registry, run_id, "kmeans",
                                                catalog.validate_clustering("kmeans", {"n_clusters": 10}),
                                                projection_id, 0, status="running", worker_pid=os.getpid())
    run_here(registry, data_dir, job)

    # --- timeline ------------------------------------------------------------------------------
    from ml.analysis.timeline import mean_displacement, tsne_frames
    from ml.snapshots import list_snapshots, load_snapshot

    job = tasks.queue_timeline(registry, run_id, "tsne", status="running", worker_pid=os.getpid())
    timeline = run_here(registry, data_dir, job)
    epochs = [row["epoch"] for row in list_snapshots(run_dir)]
    print(f"timeline tsne, {len(epochs)} snapshots {epochs} of {len(dataset)} points: {timeline['wall_seconds']:.0f} s,"
          f" aligned displacement {timeline['displacement']:.4f}", flush=True)
    sample = args.independent_sample or len(dataset)
    snapshots = [load_snapshot(run_dir, epoch)[:sample] for epoch in epochs]
    started = time.perf_counter()
    aligned = mean_displacement(tsne_frames(snapshots, aligned=True))
    aligned_seconds = time.perf_counter() - started
    started = time.perf_counter()
    independent = mean_displacement(tsne_frames(snapshots, aligned=False))
    independent_seconds = time.perf_counter() - started
    print(f"on the first {sample} points: aligned {aligned:.4f} ({aligned_seconds:.0f} s), independent"
          f" {independent:.4f} ({independent_seconds:.0f} s), ratio aligned / independent {aligned / independent:.3f}",
          flush=True)

    # --- stability -----------------------------------------------------------------------------
    job = tasks.queue_stability(registry, run_id, clustering_id, args.repeats, status="running", worker_pid=os.getpid())
    stability = run_here(registry, data_dir, job)
    print(f"stability of k-means (k = 10) on the UMAP map, {args.repeats} repeats: {stability['wall_seconds']:.1f} s,"
          f" mean ARI {stability['mean_ari']:.4f}", flush=True)

    # --- decoder latency -----------------------------------------------------------------------
    from fastapi.testclient import TestClient

    from app.main import create_app
    from app.model_worker import MODEL_WORKER

    coords = np.load(run_dir / "projections" / projection_id / "coords.npy")
    low, high = coords.min(axis=0), coords.max(axis=0)
    rng = np.random.default_rng(0)
    with TestClient(create_app(settings)) as client:
        def timed(path: str, params: dict) -> float:
            started = time.perf_counter()
            answer = client.get(f"/api/runs/{run_id}/{path}", params=params)
            assert answer.status_code == 200, answer.text
            return time.perf_counter() - started

        timed("decode", {"projection": projection_id, "x": float(coords[0, 0]), "y": float(coords[0, 1])})  # starts the model process
        decode_times = [timed("decode", {"projection": projection_id, "x": float(x), "y": float(y)})
                        for x, y in rng.uniform(low, high, size=(args.requests, 2))]
        timed("interpolate", {"a": 0, "b": 1})
        interpolate_times = [timed("interpolate", {"a": int(a), "b": int(b), "steps": 8})
                             for a, b in rng.integers(0, len(coords), size=(args.requests, 2))]
    MODEL_WORKER.close()
    print(f"decode: {percentiles(decode_times)}; interpolate (8 steps): {percentiles(interpolate_times)}")
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
