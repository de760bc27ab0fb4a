"""Epoch snapshots: the embedding of every image at a few evenly spaced epochs of training.

Training parameter `snapshots` (default 8, 0 = off, at most 32) chooses how many; the epochs are
evenly spaced and always include the last one (every epoch when snapshots ≥ epochs). Each is stored
as `snapshots/epoch-<E>.npy` in the run directory, float16 N × d (float32 only if a value would
overflow float16), next to `snapshots/snapshots.json` = [{"epoch", "knn_accuracy"}] (kNN accuracy of
that embedding on the run's evaluation split, null without labels).

Size stays bounded: at most `snapshots` ≤ 32 files of N × d × 2 bytes — 8 × 70,000 × 32 × 2 = 36 MB
by default, 32 × 70,000 × 128 × 2 = 573 MB at the very most; a fresh training clears the folder, a
resumed one replaces the epochs it repeats. Torch-free: the server and the timeline job read these.
"""
from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from ml import artifacts

SNAPSHOTS_DIR = "snapshots"
SNAPSHOT_INDEX = "snapshots.json"
DEFAULT_SNAPSHOTS = 8
MAX_SNAPSHOTS = 32
FLOAT16_MAX = 65_000.0  # a little under float16's largest finite value (65,504)


def snapshot_epochs(epochs: int, snapshots: int) -> list[int]:
    """The epochs (1-based, ascending) whose embedding is saved: `snapshots` evenly spaced ones ending
    at `epochs`, e.g. (20, 8) → [3, 5, 8, 10, 13, 15, 18, 20]; every epoch when snapshots ≥ epochs."""
    if snapshots <= 0:
        return []
    count = min(snapshots, epochs)
    return sorted({math.ceil(epochs * (i + 1) / count) for i in range(count)})


def snapshot_path(run_dir: Path, epoch: int) -> Path:
    return Path(run_dir) / SNAPSHOTS_DIR / f"epoch-{epoch:04d}.npy"


def clear_snapshots(run_dir: Path) -> None:
    """Remove the snapshots of an earlier training of this run directory."""
    shutil.rmtree(Path(run_dir) / SNAPSHOTS_DIR, ignore_errors=True)


def write_snapshot(run_dir: Path, epoch: int, embedding: np.ndarray, knn_accuracy: float | None) -> Path:
    """Store the embedding (N × d) at `epoch` (float16 when it fits) and list it in the index (atomic writes)."""
    embedding = np.asarray(embedding)
    fits = np.all(np.isfinite(embedding)) and float(np.abs(embedding).max(initial=0.0)) < FLOAT16_MAX
    path = artifacts.write_npy(snapshot_path(run_dir, epoch), embedding.astype(np.float16 if fits else np.float32))
    rows = [row for row in _read_index(run_dir) if row["epoch"] != epoch]
    rows.append({"epoch": int(epoch), "knn_accuracy": knn_accuracy})
    artifacts.write_json(Path(run_dir) / SNAPSHOTS_DIR / SNAPSHOT_INDEX, sorted(rows, key=lambda row: row["epoch"]))
    return path


def list_snapshots(run_dir: Path) -> list[dict[str, Any]]:
    """[{"epoch", "knn_accuracy"}] of the snapshots whose files exist, in epoch order."""
    return [row for row in _read_index(run_dir) if snapshot_path(run_dir, row["epoch"]).exists()]


def load_snapshot(run_dir: Path, epoch: int) -> np.ndarray:
    """The embedding at `epoch` as float32 N × d."""
    return np.load(snapshot_path(run_dir, epoch)).astype(np.float32)


def _read_index(run_dir: Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / SNAPSHOTS_DIR / SNAPSHOT_INDEX
    if not path.exists():
        return []
    rows = artifacts.read_json(path)
    return rows if isinstance(rows, list) else []
