"""Run-directory level analysis: what the CLI and the job workers call.

A projection is stored as `projections/<id>/coords.npy` (float32 N × k) and a clustering as
`clusterings/<id>/labels.npy` (int64 N, -1 = noise), each with a `meta.json`. Every file is written
atomically and meta.json is written last, so a directory without meta.json is unfinished work and is
not listed. The run's kNN graph (ml.analysis.neighbors) is computed once and shared by all of them.
"""
from __future__ import annotations

import re
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from ml import artifacts
from ml.analysis.cluster_metrics import score_clustering
from ml.analysis.clustering import make_clustering
from ml.analysis.neighbors import TRUSTWORTHINESS_K, load_embedding, load_or_compute_knn, trustworthiness
from ml.analysis.preservation import neighbourhood_preservation, preservation_path
from ml.analysis.projection import make_projection
from ml.params import ParamError
from ml.progress import ProgressCallback

COORDS = "coords.npy"
CLUSTER_LABELS = "labels.npy"
META = "meta.json"
EMBEDDING = "embedding"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def run_projection(
    run_dir: Path,
    method: str,
    params: dict[str, Any],
    seed: int = 0,
    progress: ProgressCallback | None = None,
    projection_id: str | None = None,
) -> dict[str, Any]:
    """Project the run's embedding with `method`; write projections/<id>/coords.npy and meta.json.

    Returns the meta: id, method, params (as used, automatic choices resolved), seed, n_components,
    n_points, seconds, trustworthiness (k = 10, sampled; null below 21 points), neighbourhood_preservation
    (mean of the per-point values stored beside the coordinates, ml.analysis.preservation), knn_reused, created.
    Raises ParamError for an unknown method or bad parameters (before any work) and
    ml.progress.Stopped when `progress` asks to stop (nothing is written then).
    """
    run_dir = Path(run_dir)
    projector = make_projection(method, params, random_state=seed)
    projector.params.validate(params)
    projection_id = _new_id(projection_id, method, run_dir / artifacts.PROJECTIONS_DIR)
    started = time.perf_counter()
    embedding = load_embedding(run_dir)
    graph = load_or_compute_knn(run_dir, seed=seed)
    reused = projector.needs_knn(len(embedding))
    coords = projector.fit(embedding, graph if reused else None, progress).embedding_
    score = None
    if len(embedding) > 2 * TRUSTWORTHINESS_K:
        score = trustworthiness(embedding, coords, graph, seed=seed)
    preservation = neighbourhood_preservation(graph, coords)
    meta = {
        "id": projection_id,
        "method": method,
        "params": projector.params_,
        "seed": seed,
        "n_components": int(coords.shape[1]),
        "n_points": int(coords.shape[0]),
        "seconds": round(time.perf_counter() - started, 3),
        "trustworthiness": score,
        "neighbourhood_preservation": float(preservation.mean()),
        "knn_reused": reused,
        "created": _now(),
    }
    folder = run_dir / artifacts.PROJECTIONS_DIR / projection_id
    artifacts.write_npy(folder / COORDS, coords)
    artifacts.write_npy(preservation_path(run_dir, projection_id), preservation)
    artifacts.write_json(folder / META, meta)
    return meta


def run_clustering(
    run_dir: Path,
    method: str,
    params: dict[str, Any],
    on: str = EMBEDDING,
    seed: int = 0,
    progress: ProgressCallback | None = None,
    clustering_id: str | None = None,
) -> dict[str, Any]:
    """Cluster the run's embedding (on="embedding") or one of its projections (on=<projection id>).

    Writes clusterings/<id>/labels.npy and meta.json; returns the meta: id, method, params (k, eps,
    ... resolved), on, seed, n_points, n_clusters, noise_fraction, silhouette (in the clustered
    space, sampled), ari, nmi, accuracy (against labels.npy, null without), seconds, created.
    Raises ParamError for an unknown method, bad parameters, an unknown projection or a refused size.
    """
    run_dir = Path(run_dir)
    clusterer = make_clustering(method, params, random_state=seed)
    clusterer.params.validate(params)
    clustering_id = _new_id(clustering_id, method, run_dir / artifacts.CLUSTERINGS_DIR)
    started = time.perf_counter()
    if on == EMBEDDING:
        points = load_embedding(run_dir)
        graph = load_or_compute_knn(run_dir, seed=seed) if clusterer.needs_knn(len(points)) else None
    else:
        points = load_projection(run_dir, on)
        graph = None  # the shared graph is of the embedding, not of this projection
    true_labels = _labels(run_dir)
    n_classes = len(np.unique(true_labels)) if true_labels is not None else None
    labels = clusterer.fit(points, graph, n_classes, progress).labels_
    meta = {
        "id": clustering_id,
        "method": method,
        "params": clusterer.params_,
        "on": on,
        "seed": seed,
        "n_points": int(len(labels)),
        **score_clustering(points, labels, true_labels, seed=seed),
        "seconds": round(time.perf_counter() - started, 3),
        "created": _now(),
    }
    folder = run_dir / artifacts.CLUSTERINGS_DIR / clustering_id
    artifacts.write_npy(folder / CLUSTER_LABELS, labels)
    artifacts.write_json(folder / META, meta)
    return meta


def list_projections(run_dir: Path) -> list[dict[str, Any]]:
    """Metas of the run's finished projections, oldest first."""
    return _list(Path(run_dir) / artifacts.PROJECTIONS_DIR)


def list_clusterings(run_dir: Path) -> list[dict[str, Any]]:
    """Metas of the run's finished clusterings, oldest first."""
    return _list(Path(run_dir) / artifacts.CLUSTERINGS_DIR)


def load_projection(run_dir: Path, projection_id: str) -> np.ndarray:
    """coords.npy (float32 N × k) of a finished projection; ParamError when there is none."""
    return _load(Path(run_dir) / artifacts.PROJECTIONS_DIR, projection_id, COORDS, "projection")


def load_clustering(run_dir: Path, clustering_id: str) -> np.ndarray:
    """labels.npy (int64 N, -1 = noise) of a finished clustering; ParamError when there is none."""
    return _load(Path(run_dir) / artifacts.CLUSTERINGS_DIR, clustering_id, CLUSTER_LABELS, "clustering")


def _labels(run_dir: Path) -> np.ndarray | None:
    path = run_dir / artifacts.LABELS
    return np.load(path) if path.exists() else None


def _new_id(given: str | None, method: str, parent: Path) -> str:
    if given is None:
        return f"{method}-{uuid.uuid4().hex[:8]}"
    if not _ID.match(given) or given == EMBEDDING:
        raise ParamError(f"id {given!r} must be 1-64 letters, digits, '-', '_' or '.', starting with a letter or digit")
    if (parent / given / META).exists():
        raise ParamError(f"{given!r} already exists in this run")
    return given


def _list(parent: Path) -> list[dict[str, Any]]:
    if not parent.is_dir():
        return []
    metas = [artifacts.read_json(meta) for meta in parent.glob(f"*/{META}")]
    return sorted(metas, key=lambda meta: (meta.get("created", ""), meta["id"]))


def _load(parent: Path, item_id: str, file_name: str, kind: str) -> np.ndarray:
    if not _ID.match(item_id) or not (parent / item_id / META).exists():
        raise ParamError(f"no finished {kind} {item_id!r} in this run")
    return np.load(parent / item_id / file_name)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
