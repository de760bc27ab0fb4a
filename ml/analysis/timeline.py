"""The embedding's story over training: every epoch snapshot (ml.snapshots) as one aligned sequence of maps.

Projected one by one, the snapshots' maps jump (t-SNE and UMAP are free to rotate, mirror and
rearrange each map). Aligned, the points move only as much as the encoder changed them:
- `tsne` (openTSNE): the first snapshot is a usual t-SNE (PCA initialisation, early exaggeration);
  each later one starts from the previous frame's coordinates and is optimised on its own
  affinities without early exaggeration (which would scatter the given layout) for fewer iterations.
- `umap` (umap-learn's AlignedUMAP): all snapshots at once, each point related to itself in the
  next snapshot (identity relations), so the layouts are fitted together with an alignment penalty.

The result is `timelines/<id>.npz`: epochs (int64 S), coords (float32 S × N × 2), knn_accuracy
(float64 S, NaN without labels), method. Only the newest timeline of a run is kept.
"""
from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ml import artifacts
from ml.analysis.neighbors import KNN_K, compute_knn
from ml.progress import ProgressCallback, report
from ml.snapshots import list_snapshots, load_snapshot

TIMELINE_METHODS = ("tsne", "umap")
TIMELINES_DIR = "timelines"
MIN_SNAPSHOTS = 2
PERPLEXITY = 30.0
FIRST_FRAME_ITER = 500  # after 250 of early exaggeration, as a usual t-SNE map
NEXT_FRAME_ITER = 250  # a later frame starts near its answer
UMAP_NEIGHBOURS = 15
ONE_THREAD_BELOW = 5_000  # openTSNE's threads mostly wait on each other below this (ml.analysis.projection)


class NoSnapshots(ValueError):
    """The run has fewer than two epoch snapshots."""


def _tsne_frame(embedding: np.ndarray, initial: np.ndarray | None, seed: int) -> np.ndarray:
    """One t-SNE map (float32 N × 2) of a snapshot: the usual one without `initial`, else continued from it."""
    from openTSNE import TSNE, TSNEEmbedding, affinity, initialization, nearest_neighbors

    n = len(embedding)
    n_jobs = 1 if n < ONE_THREAD_BELOW else -1
    needed = min(n - 1, int(np.ceil(3 * PERPLEXITY)), KNN_K)
    graph = compute_knn(embedding, needed)
    index = nearest_neighbors.PrecomputedNeighbors(graph.indices, graph.distances.astype(np.float64))
    affinities = affinity.PerplexityBasedNN(perplexity=min(PERPLEXITY, needed / 3.0), knn_index=index, n_jobs=n_jobs,
                                            random_state=seed)
    method = "fft" if n >= 10_000 else "bh"
    if initial is None:
        tsne = TSNE(n_iter=FIRST_FRAME_ITER, negative_gradient_method=method, n_jobs=n_jobs, random_state=seed)
        start = initialization.pca(embedding, n_components=2, random_state=seed)
        return np.asarray(tsne.fit(affinities=affinities, initialization=start), dtype=np.float32)
    # The previous frame is a finished map, not a tiny random start: optimised on as it is (TSNE.fit
    # would warn about its spread), with the usual learning rate ("auto") and momentum of the last phase.
    frame = TSNEEmbedding(np.array(initial, dtype=np.float64), affinities, negative_gradient_method=method,
                          n_jobs=n_jobs, random_state=seed)
    frame.optimize(n_iter=NEXT_FRAME_ITER, momentum=0.8, inplace=True)
    return np.asarray(frame, dtype=np.float32)


def tsne_frames(snapshots: list[np.ndarray], aligned: bool = True, seed: int = 0,
                progress: ProgressCallback | None = None) -> list[np.ndarray]:
    """t-SNE maps (float32 N × 2) of the snapshots (each N × d), each started from the previous one when `aligned`."""
    frames: list[np.ndarray] = []
    for i, embedding in enumerate(snapshots):
        frames.append(_tsne_frame(embedding, frames[-1] if aligned and frames else None, seed))
        report(progress, i + 1, len(snapshots), {"fraction": (i + 1) / (len(snapshots) + 1)})
    return frames


def umap_frames(snapshots: list[np.ndarray], aligned: bool = True, seed: int = 0,
                progress: ProgressCallback | None = None) -> list[np.ndarray]:
    """UMAP maps (float32 N × 2) of the snapshots: one AlignedUMAP fit with identity relations when
    `aligned`, else one UMAP per snapshot."""
    from ml.numba_cache import import_umap

    umap = import_umap()
    n = len(snapshots[0])
    neighbours = min(UMAP_NEIGHBOURS, n - 1)
    if not aligned:
        frames = []
        for i, embedding in enumerate(snapshots):
            reducer = umap.UMAP(n_neighbors=neighbours, random_state=seed, n_jobs=1)
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*n_jobs value.*")
                frames.append(np.asarray(reducer.fit_transform(embedding), dtype=np.float32))
            report(progress, i + 1, len(snapshots), {"fraction": (i + 1) / (len(snapshots) + 1)})
        return frames
    identity = {i: i for i in range(n)}
    report(progress, 0, len(snapshots), {"fraction": 0.0})
    reducer = umap.AlignedUMAP(n_neighbors=neighbours, random_state=seed)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*n_jobs value.*")  # seeded: umap-learn runs one thread
        reducer.fit(snapshots, relations=[identity] * (len(snapshots) - 1))
    return [np.asarray(frame, dtype=np.float32) for frame in reducer.embeddings_]


FRAMES = {"tsne": tsne_frames, "umap": umap_frames}


def mean_displacement(frames: list[np.ndarray]) -> float:
    """Mean distance a point moves between consecutive frames, each frame first centred and scaled to
    unit root-mean-square radius (so that maps of different sizes compare)."""
    def normalised(frame: np.ndarray) -> np.ndarray:
        centred = frame - frame.mean(axis=0)
        return centred / np.sqrt((centred**2).sum(axis=1).mean())

    steps = [np.linalg.norm(normalised(b) - normalised(a), axis=1).mean() for a, b in zip(frames, frames[1:])]
    return float(np.mean(steps))


def run_timeline(run_dir: Path, method: str, seed: int = 0, progress: ProgressCallback | None = None,
                 timeline_id: str = "timeline") -> dict[str, Any]:
    """Project the run's snapshots into aligned frames; writes timelines/<timeline_id>.npz and removes
    older timelines. Returns {"method", "epochs", "seconds", "displacement"}. Raises NoSnapshots with
    fewer than two snapshots, ValueError for an unknown method."""
    if method not in FRAMES:
        raise ValueError(f"method must be one of {', '.join(TIMELINE_METHODS)}, got {method!r}")
    run_dir = Path(run_dir)
    rows = list_snapshots(run_dir)
    if len(rows) < MIN_SNAPSHOTS:
        raise NoSnapshots(f"the run has {len(rows)} epoch snapshot(s); a timeline needs at least {MIN_SNAPSHOTS}:"
                          " train with snapshots >= 2 (the default is 8)")
    started = time.perf_counter()
    snapshots = [load_snapshot(run_dir, row["epoch"]) for row in rows]
    frames = FRAMES[method](snapshots, aligned=True, seed=seed, progress=progress)
    accuracy = np.array([np.nan if row["knn_accuracy"] is None else row["knn_accuracy"] for row in rows], dtype=np.float64)
    folder = run_dir / TIMELINES_DIR
    path = artifacts.write_npz(folder / f"{timeline_id}.npz", epochs=np.array([row["epoch"] for row in rows], dtype=np.int64),
                               coords=np.stack(frames).astype(np.float32), knn_accuracy=accuracy, method=np.array(method))
    for older in folder.glob("*.npz"):
        if older != path:
            older.unlink(missing_ok=True)
    report(progress, len(rows) + 1, len(rows), {"fraction": 1.0})
    return {"method": method, "epochs": [row["epoch"] for row in rows], "seconds": round(time.perf_counter() - started, 3),
            "displacement": mean_displacement(frames)}


def load_timeline(run_dir: Path, timeline_id: str) -> dict[str, Any] | None:
    """The stored timeline: {"method", "epochs" (S,), "coords" (S × N × 2), "knn_accuracy" (S,)}, None if absent."""
    path = Path(run_dir) / TIMELINES_DIR / f"{timeline_id}.npz"
    if not path.exists():
        return None
    with np.load(path, allow_pickle=False) as stored:
        return {"method": str(stored["method"]), "epochs": stored["epochs"], "coords": stored["coords"],
                "knn_accuracy": stored["knn_accuracy"]}
