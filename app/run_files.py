"""Read a run's artifacts for the map endpoints (numpy only; arrays cached by file modification time)."""
from __future__ import annotations

import base64
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ml import artifacts

KNN_AGREEMENT_K = 10


@lru_cache(maxsize=64)
def _load(path: str, mtime_ns: int) -> np.ndarray:
    array = np.load(path, allow_pickle=False)
    array.setflags(write=False)
    return array


def load_array(path: Path) -> np.ndarray | None:
    """The array in `path`, or None when the file does not exist."""
    try:
        mtime = path.stat().st_mtime_ns
    except FileNotFoundError:
        return None
    return _load(str(path), mtime)


def embedding_shape(run_dir: Path) -> list[int] | None:
    path = run_dir / artifacts.EMBEDDINGS
    if not path.exists():
        return None
    return list(np.load(path, mmap_mode="r").shape)


def history(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / artifacts.HISTORY
    if not path.exists():
        return []
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return value if isinstance(value, list) else []


TRAINED_WITH = {"encoder_resolved": "encoder", "device_resolved": "device", "precision": "precision", "torch_threads": "torch_threads"}


def trained_with(run_dir: Path) -> dict[str, Any] | None:
    """What training resolved from the request (encoder for `auto`, device, precision, torch threads),
    from the run's config.json; None before training has written it (and for imports)."""
    try:
        config = artifacts.read_json(run_dir / artifacts.CONFIG)
    except (OSError, ValueError):
        return None
    if not isinstance(config, dict) or "device_resolved" not in config:
        return None
    return {name: config[key] for key, name in TRAINED_WITH.items() if config.get(key) is not None}


def labels(run_dir: Path) -> np.ndarray | None:
    return load_array(run_dir / artifacts.LABELS)


def class_names(run_dir: Path) -> list[str] | None:
    """The names of an imported run's label values (class_names.json), or None (trained runs: the dataset's)."""
    path = run_dir / artifacts.CLASS_NAMES
    if not path.is_file():
        return None
    names = json.loads(path.read_text(encoding="utf-8"))
    return names if isinstance(names, list) else None


def coords(run_dir: Path, projection_id: str) -> np.ndarray | None:
    return load_array(run_dir / artifacts.PROJECTIONS_DIR / projection_id / "coords.npy")


def cluster_labels(run_dir: Path, clustering_id: str) -> np.ndarray | None:
    return load_array(run_dir / artifacts.CLUSTERINGS_DIR / clustering_id / "labels.npy")


def cluster_stability(run_dir: Path, clustering_id: str) -> np.ndarray | None:
    """float32 (N,) per-point stability of a clustering (ml.analysis.stability), None until computed."""
    return load_array(run_dir / artifacts.CLUSTERINGS_DIR / clustering_id / "stability.npy")


def b64(array: np.ndarray, dtype: str) -> str:
    """base64 of the array's values as little-endian `dtype` (e.g. "<f4")."""
    return base64.b64encode(np.ascontiguousarray(array, dtype=np.dtype(dtype)).tobytes()).decode("ascii")


def knn_agreement(run_dir: Path, k: int = KNN_AGREEMENT_K) -> np.ndarray | None:
    """float32 (N,): the fraction of each point's k nearest embedding neighbours sharing its label.

    Read from the run's cached kNN graph (written by the projection job); None when the run has no
    labels or no graph yet.
    """
    from ml.analysis.neighbors import KNN_FILE

    knn_path, labels_path = run_dir / KNN_FILE, run_dir / artifacts.LABELS
    if not knn_path.exists() or not labels_path.exists():
        return None
    return _agreement(str(run_dir), knn_path.stat().st_mtime_ns, labels_path.stat().st_mtime_ns, k)


@lru_cache(maxsize=8)
def _agreement(run_dir: str, knn_mtime_ns: int, labels_mtime_ns: int, k: int) -> np.ndarray:
    from ml.analysis.neighbors import load_or_compute_knn

    point_labels = np.load(Path(run_dir) / artifacts.LABELS)
    graph = load_or_compute_knn(Path(run_dir), k=k)
    neighbours = graph.indices[:, : min(k, graph.k)]
    agreement = (point_labels[neighbours] == point_labels[:, None]).mean(axis=1).astype(np.float32)
    agreement.setflags(write=False)
    return agreement


def neighbourhood_preservation(run_dir: Path, projection_id: str) -> np.ndarray | None:
    """float32 (N,) per-point neighbourhood preservation of a projection (ml.analysis.preservation),
    computed and stored the first time for projections made before it existed; None when it cannot
    be computed (the embedding or the coordinates are gone) or would need the run's kNN graph first:
    a large import's map is served without it rather than computing a whole graph in a request."""
    from ml.analysis.neighbors import KNN_FILE
    from ml.analysis.preservation import load_or_compute_preservation, preservation_path

    path = preservation_path(run_dir, projection_id)
    if not path.exists():
        if not (run_dir / KNN_FILE).exists():
            return None
        try:
            load_or_compute_preservation(run_dir, projection_id)
        except (FileNotFoundError, ValueError):
            return None
    return load_array(path)


def reconstructions(run_dir: Path) -> dict[str, np.ndarray] | None:
    path = run_dir / artifacts.RECONSTRUCTIONS
    if not path.exists():
        return None
    with np.load(path, allow_pickle=False) as stored:
        return {key: stored[key] for key in stored.files}
