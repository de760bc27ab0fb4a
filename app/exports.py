"""A run written out in outside formats: Parquet, or a folder TensorBoard's projector loads.

The table is the run's embedding with its labels and class names, imported metadata columns and
images (from its dataset, when it can be loaded); Parquet also gets every finished projection's
coordinates and every finished clustering's labels. `x`/`y` are those of the imported projection
when there is one, else of the newest finished projection, so that importing the file back gives
the same map.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

from app import imports, run_files
from app.records import Run
from app.registry import Registry
from ml.datasets import DatasetError, ImageDataset
from ml.interchange import EmbeddingTable, write_parquet, write_projector

EXPORT_FORMATS = ("parquet", "projector")


class ExportRefused(ValueError):
    """A run that cannot be exported (not finished); the message says why."""


def run_table(run: Run, registry: Registry, load_dataset: Callable[[str], ImageDataset]
              ) -> tuple[EmbeddingTable, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(table, projection id → N × 2, clustering id → N labels) of a finished run."""
    run_dir = Path(run.run_dir)
    embedding = run_files.load_array(run_dir / "embeddings.npy")
    if run.status != "succeeded" or embedding is None:
        raise ExportRefused(f"run {run.id} has no embedding to export (status {run.status})")
    dataset = _dataset(run, load_dataset, len(embedding))
    labels = run_files.labels(run_dir)
    class_names = run_files.class_names(run_dir) or (dataset.class_names if dataset is not None else None)
    if labels is not None and not class_names:
        class_names = [str(value) for value in range(int(labels.max(initial=-1)) + 1)]
    finished = [row for row in registry.list_projections(run.id) if row.status == "succeeded"]
    projections = {row.id: xy[:, :2] for row in finished
                   if (xy := run_files.coords(run_dir, row.id)) is not None and xy.shape[1] >= 2}
    imported = [row.id for row in finished if row.method == imports.KIND and row.id in projections]
    shown = imported[0] if imported else (list(projections)[-1] if projections else None)
    coords = projections[shown] if shown is not None else None
    clusterings = {row.id: array for row in registry.list_clusterings(run.id) if row.status == "succeeded"
                   and (array := run_files.cluster_labels(run_dir, row.id)) is not None}
    table = EmbeddingTable(embedding=np.asarray(embedding), labels=None if labels is None else np.asarray(labels),
                           class_names=class_names if labels is not None else None,
                           metadata=imports.read_metadata(run_dir),
                           images=None if dataset is None else np.asarray(dataset.images), coords=coords)
    return table.checked(run.id), projections, clusterings


def _dataset(run: Run, load_dataset: Callable[[str], ImageDataset], n: int) -> ImageDataset | None:
    """The run's images when they can be loaded and match its points (they may have been removed)."""
    if run.dataset.startswith(f"{imports.KIND}:"):
        return None
    try:
        dataset = load_dataset(run.dataset)
    except DatasetError:
        return None
    return dataset if len(dataset) == n else None


def export_run(run: Run, registry: Registry, load_dataset: Callable[[str], ImageDataset], format: str,
               out: Path) -> Path:
    """Write the run to `out` (a .parquet file, or a projector folder that must not hold files yet)."""
    if format not in EXPORT_FORMATS:
        raise ExportRefused(f"format must be one of {', '.join(EXPORT_FORMATS)}, got {format!r}")
    out = Path(out)
    if format == "projector" and out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ExportRefused(f"{out} already exists and is not an empty folder")
    if format == "parquet" and out.is_dir():
        raise ExportRefused(f"{out} is a folder; name the .parquet file to write")
    table, projections, clusterings = run_table(run, registry, load_dataset)
    if format == "parquet":
        return write_parquet(out, table, projections, clusterings)
    return write_projector(out, table, tensor_name=run.config.get("name") or run.id)


def export_archive(run: Run, registry: Registry, load_dataset: Callable[[str], ImageDataset], format: str,
                   workspace: Path) -> Path:
    """The export as one file in `workspace`: the .parquet, or a .zip of the projector folder."""
    if format == "parquet":
        return export_run(run, registry, load_dataset, format, workspace / f"{run.id}.parquet")
    folder = export_run(run, registry, load_dataset, format, workspace / f"{run.id}-projector")
    return Path(shutil.make_archive(str(workspace / f"{run.id}-projector"), "zip", root_dir=folder))


def temporary_workspace() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="latentmap-export-")
