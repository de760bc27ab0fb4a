"""Atomic artifact writes and the run directory layout.

Every artifact is written to a temporary file in the same directory, flushed to disk and renamed
over its final name, so a reader sees either the old complete file or the new complete file and a
process killed at any line leaves no half-written artifact behind.
"""
from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

# File names inside a run directory (DATA_DIR/runs/<run_id>/).
CONFIG = "config.json"
MODEL = "model.pt"
CHECKPOINT = "checkpoint.pt"
EMBEDDINGS = "embeddings.npy"
LABELS = "labels.npy"
METRICS = "metrics.json"
HISTORY = "history.json"
RECONSTRUCTIONS = "reconstructions.npz"
CLASS_NAMES = "class_names.json"  # imported runs: the names of their label values
METADATA = "metadata.parquet"  # imported runs: their other per-point columns
PROJECTIONS_DIR = "projections"
CLUSTERINGS_DIR = "clusterings"


def write_atomic(path: Path, write: Callable[[io.BufferedWriter], None]) -> Path:
    """Write a file through `write(handle)` into a temp file, fsync it, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    return path


def write_bytes(path: Path, data: bytes) -> Path:
    return write_atomic(path, lambda handle: handle.write(data))


def write_json(path: Path, value: Any) -> Path:
    text = json.dumps(value, indent=2, sort_keys=True, default=_json_default)
    return write_bytes(path, text.encode("utf-8"))


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_npy(path: Path, array: np.ndarray) -> Path:
    return write_atomic(path, lambda handle: np.save(handle, np.asarray(array), allow_pickle=False))


def write_npz(path: Path, **arrays: np.ndarray) -> Path:
    return write_atomic(path, lambda handle: np.savez_compressed(handle, **arrays))


def write_torch(path: Path, state: Any) -> Path:
    import torch  # imported here so that modules reading JSON artifacts do not pay for torch

    # Serialise to memory first: torch.save streaming into a file that hits a full disk (or a file
    # size limit) fails with an unreadable "[enforce fail at inline_container.cc]"; a plain write
    # of the bytes fails with the OS's own words ("No space left on device").
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return write_bytes(path, buffer.getbuffer())


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
