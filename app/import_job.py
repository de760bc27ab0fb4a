"""The `import` job: score an imported embedding, register the map it came with, queue its analyses.

What training does after its last epoch, for an embedding computed elsewhere: the scorecard's kNN
and linear-probe accuracy (stratified 80/20 split of the labelled points, on a seeded sample of at
most SCORED_POINTS) and the imported x/y as a finished projection (method `imported`): the map is
browsable when this job ends. Then, queued: the `knn` job (the shared kNN graph, up to GRAPH_POINTS
— 40 s at 70k × 50, far longer at a million — and the imported map's trustworthiness and
neighbourhood preservation, which need it), and the default analyses — no UMAP when the import
brought its map, nor above UMAP_POINTS.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from app import catalog
from app.imports import KIND
from app.registry import Registry
from app.tasks import (DEFAULT_CLUSTERING, DEFAULT_PROJECTION, PREVIEW_PROJECTION, JobContext, JobProgress,
                       default_cluster_count, queue_clustering, queue_projection)
from ml import artifacts
from ml.progress import report

SCORED_POINTS = 20_000
GRAPH_POINTS = 200_000
UMAP_POINTS = 200_000


def import_embeddings(context: JobContext) -> dict[str, Any]:
    """The job function (params: seed, projection_id, follow_ups); returns metrics.json's content."""
    job, registry = context.job, context.registry
    run_dir = context.run_dir()
    registry.update_run(job.run_id, status="running")
    progress = JobProgress(registry, job.id, context.listener)
    started = time.perf_counter()
    seed = int(job.params.get("seed", 0))
    embedding = np.load(run_dir / artifacts.EMBEDDINGS, mmap_mode="r")
    labels_path = run_dir / artifacts.LABELS
    labels = np.load(labels_path) if labels_path.exists() else None
    report(progress, 0, 0, {"fraction": 0.05})
    metrics: dict[str, Any] = {"n": int(embedding.shape[0]), "dim": int(embedding.shape[1]),
                               **score_embedding(embedding, labels, seed)}
    report(progress, 0, 1, {"fraction": 0.8})
    projection_id = job.params.get("projection_id")
    if projection_id:
        register_projection(registry, job.run_id, run_dir, projection_id, seed)
    metrics["import_seconds"] = round(time.perf_counter() - started, 3)
    artifacts.write_json(run_dir / artifacts.METRICS, metrics)
    registry.update_run(job.run_id, metrics=metrics)
    follow_ups = job.params.get("follow_ups")
    if follow_ups:
        # Queued before the job is marked done, as after training: the run page never sees a finished
        # run with no map coming.
        queue_import_analyses(registry, job.run_id, run_dir, len(embedding), has_map=bool(projection_id), seed=seed,
                              projection=follow_ups.get("projection", DEFAULT_PROJECTION),
                              clustering=follow_ups.get("clustering", DEFAULT_CLUSTERING))
    context.result = {"metrics": metrics, "n": metrics["n"]}
    return metrics


def score_embedding(embedding: np.ndarray, labels: np.ndarray | None, seed: int) -> dict[str, Any]:
    """knn_accuracy (Euclidean and cosine) and linear_probe_accuracy on the labelled points (None without two classes),
    and how many points they were scored on (a seeded sample of at most SCORED_POINTS)."""
    from ml.evaluation import cosine_knn_accuracy, evaluation_split, knn_accuracy, linear_probe_accuracy

    empty = {"knn_accuracy": None, "knn_accuracy_cosine": None, "linear_probe_accuracy": None, "scored_points": 0}
    if labels is None:
        return empty
    labelled = np.flatnonzero(labels >= 0)
    if len(labelled) > SCORED_POINTS:
        labelled = np.sort(np.random.default_rng(seed).choice(labelled, SCORED_POINTS, replace=False))
    if len(np.unique(labels[labelled])) < 2 or len(labelled) < 10:
        return empty
    x, y = np.asarray(embedding[labelled], dtype=np.float32), labels[labelled]
    train, test = evaluation_split(y, None, seed)
    return {"knn_accuracy": knn_accuracy(x[train], y[train], x[test], y[test]),
            "knn_accuracy_cosine": cosine_knn_accuracy(x[train], y[train], x[test], y[test]),
            "linear_probe_accuracy": linear_probe_accuracy(x[train], y[train], x[test], y[test], seed=seed),
            "scored_points": int(len(labelled))}


def register_projection(registry: Registry, run_id: str, run_dir: Path, projection_id: str, seed: int) -> dict[str, Any]:
    """The imported x/y (already in projections/<id>/coords.npy) as a finished projection of method
    `imported`; its trustworthiness waits for the kNN graph (the `knn` job)."""
    folder = run_dir / artifacts.PROJECTIONS_DIR / projection_id
    coords = np.load(folder / "coords.npy", mmap_mode="r")
    meta: dict[str, Any] = {"id": projection_id, "method": KIND, "params": {}, "seed": seed, "n_components": 2,
                            "n_points": int(len(coords)), "seconds": 0.0, "trustworthiness": None,
                            "created": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())}
    artifacts.write_json(folder / "meta.json", meta)
    registry.add_projection(projection_id, run_id, KIND, {}, None, status="succeeded")
    registry.update_analysis("projections", projection_id, "succeeded", meta)
    return meta


def complete_graph(context: JobContext) -> dict[str, Any]:
    """The `knn` job (params: seed): the run's kNN graph, then each imported map's trustworthiness
    and per-point neighbourhood preservation (written beside its coordinates, means in its metrics)."""
    from ml.analysis.neighbors import load_embedding, load_or_compute_knn, trustworthiness
    from ml.analysis.preservation import write_preservation

    job, registry = context.job, context.registry
    run_dir, seed = context.run_dir(), int(job.params.get("seed", 0))
    progress = JobProgress(registry, job.id, context.listener)
    report(progress, 0, 0, {"fraction": 0.0})
    graph = load_or_compute_knn(run_dir, seed=seed)
    report(progress, 0, 1, {"fraction": 0.6})
    scored = {}
    for row in registry.list_projections(job.run_id):
        folder = run_dir / artifacts.PROJECTIONS_DIR / row.id
        if row.method != KIND or row.status != "succeeded" or graph.n <= 20:
            continue
        coords = np.load(folder / "coords.npy")
        meta = {**artifacts.read_json(folder / "meta.json"),
                "trustworthiness": trustworthiness(load_embedding(run_dir), coords, graph, seed=seed),
                "neighbourhood_preservation": float(write_preservation(run_dir, row.id, coords, graph).mean())}
        artifacts.write_json(folder / "meta.json", meta)
        registry.update_analysis("projections", row.id, "succeeded", {**(row.metrics or {}), **meta})
        scored[row.id] = meta["trustworthiness"]
    context.result = {"trustworthiness": scored}
    return {"n": graph.n, "k": graph.k, "trustworthiness": scored}


def queue_import_analyses(registry: Registry, run_id: str, run_dir: Path, n: int, *, has_map: bool, seed: int,
                          projection: str, clustering: str) -> None:
    """With the import's own map: the `knn` job (up to GRAPH_POINTS), then the default clustering; its
    x/y stay its map (the page would otherwise switch to a newer UMAP map). Without one: a quick PCA
    map (whose job computes the graph), the default clustering, then the default projection unless
    the import is large (UMAP above UMAP_POINTS would hold a worker for long)."""
    if has_map and n <= GRAPH_POINTS:  # (without a map, the PCA projection job computes the graph)
        registry.create_job("knn", run_id, {"seed": seed})
    if not has_map and projection != PREVIEW_PROJECTION:
        queue_projection(registry, run_id, PREVIEW_PROJECTION, catalog.validate_projection(PREVIEW_PROJECTION, {}), seed)
    names = {spec.name for spec in catalog.clusterings()[clustering].params.specs}
    given = {"n_clusters": default_cluster_count(run_dir)} if "n_clusters" in names else {}
    queue_clustering(registry, run_id, clustering, catalog.validate_clustering(clustering, given), "embedding", seed)
    if not has_map and (n <= UMAP_POINTS or projection == PREVIEW_PROJECTION):
        queue_projection(registry, run_id, projection, catalog.validate_projection(projection, {}), seed)
