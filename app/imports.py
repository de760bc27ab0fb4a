"""An imported embedding becomes a run: read and checked first, then landed as a run of kind `imported`.

Everything that can be wrong with the input is found before anything is written (the reader's
checks, the labels, `--dataset` of another size), so a refused import leaves no run, no job and no
file behind. Landing writes the run's artifacts as training would (embeddings.npy, labels.npy,
config.json) plus what an import brings: class_names.json, metadata.parquet, its x/y as an
unfinished projection, and its images as a packed dataset (`import-<run id>`) that every image
endpoint serves. The `import` job (app.import_job) then scores it and makes its map.
"""
from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pyarrow as pa

from app.dataset_source import is_known
from app.records import Job, new_id
from app.registry import Registry
from ml import artifacts
from ml.datasets import ImageDataset
from ml.interchange import FORMATS, EmbeddingTable, InterchangeError, read_embeddings

KIND = "imported"  # the run's method and the imported projection's method
KIND_JOB = "import"
IMAGES_PREFIX = "import-"


class ImportRefused(ValueError):
    """An import that cannot be made; `status` is the HTTP answer (404 unknown dataset, 422 bad input)."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ImportOptions:
    """How to read an import (the CLI flags and the `options` field of POST /api/imports)."""

    format: str = "auto"
    name: str | None = None
    labels_column: str | None = None
    image_column: str | None = None
    embedding_column: str | None = None
    dataset: str | None = None

    def __post_init__(self) -> None:
        if self.format not in ("auto", *FORMATS):
            raise ImportRefused(f"format must be auto or one of {', '.join(FORMATS)}, got {self.format!r}")
        if self.name is not None and not 1 <= len(self.name) <= 200:
            raise ImportRefused("name must be 1-200 characters")


def read_import(path: Path, options: ImportOptions) -> EmbeddingTable:
    """The checked table in `path`; ImportRefused (422) names the problem."""
    try:
        return read_embeddings(path, options.format, labels_column=options.labels_column,
                               image_column=options.image_column, embedding_column=options.embedding_column)
    except InterchangeError as exc:
        raise ImportRefused(str(exc)) from None
    except (pa.ArrowException, UnicodeDecodeError) as exc:  # a file that its reader could open but not decode
        raise ImportRefused(f"{Path(path).name}: not a readable {options.format} file ({str(exc).splitlines()[0]})") from None


def matched_dataset(table: EmbeddingTable, options: ImportOptions, registry: Registry, datasets_dir: Path | None,
                    load: Callable[[str], ImageDataset]) -> ImageDataset | None:
    """The dataset `--dataset` names, checked to hold one image per point (in the same order); None without it."""
    if options.dataset is None:
        return None
    if not is_known(options.dataset, registry, datasets_dir):
        raise ImportRefused(f"dataset: no dataset named {options.dataset!r}; GET /api/datasets lists them", 404)
    dataset = load(options.dataset)
    if len(dataset) != table.n:
        raise ImportRefused(f"dataset {options.dataset!r} has {len(dataset)} images, the embedding has {table.n} points;"
                            " --dataset needs one image per point, in the same order")
    if table.images is not None:
        raise ImportRefused("the import brings its own images; drop --dataset or the images")
    return dataset


def land_import(registry: Registry, data_dir: Path, uploads_dir: Path, table: EmbeddingTable, options: ImportOptions,
                dataset: ImageDataset | None, source_format: str, source_name: str, *,
                follow_ups: dict[str, str] | None,
                status: str = "queued", worker_pid: int | None = None) -> tuple[str, Job]:
    """Write the run (artifacts, rows) and its `import` job row; returns (run id, job).

    `dataset` is the matched --dataset (its images and, when the import has none, its labels);
    `source_name` (the file's name) names the run when the options give no name.
    Nothing is left behind when a write fails.
    """
    run_id = new_id("r")
    run_dir = data_dir / "runs" / run_id
    if dataset is not None and table.labels is None and dataset.labels is not None:
        table.labels, table.class_names = dataset.labels, dataset.class_names
    images_name = f"{IMAGES_PREFIX}{run_id}" if table.images is not None else None
    run_dataset = options.dataset or images_name or f"{KIND}:{run_id}"  # the last names no images
    config = {**{key: value for key, value in asdict(options).items() if key != "format"},
              "name": options.name or source_name, "kind": KIND, "method": KIND,
              "format": source_format, "n": table.n,
              "dim": table.dim, "embedding_dim": table.dim, "has_labels": table.labels is not None,
              "has_images": table.images is not None or dataset is not None, "has_coords": table.coords is not None,
              "metadata_columns": list(table.metadata), "seed": 0}
    registry.create_run(run_id, run_dataset, KIND, config, run_dir)
    images_folder = uploads_dir / images_name if images_name else None
    try:
        projection_id = _write_run(run_dir, table, config)
        if images_folder is not None:
            from ml.datasets.packed import write_packed

            write_packed(images_folder, table.images, table.labels, table.class_names)
            registry.add_dataset(images_name, images_folder, table.n,
                                 {"images": table.n, "classes": table.class_names or [], "import_run": run_id})
        job = registry.create_job(KIND_JOB, run_id, {"seed": 0, "projection_id": projection_id, "follow_ups": follow_ups},
                                  status=status, worker_pid=worker_pid)
        registry.update_run(run_id, job_id=job.id, status=status)
    except BaseException:
        registry.delete_run(run_id)
        if images_name is not None:
            registry.forget_dataset(images_name)
            shutil.rmtree(images_folder, ignore_errors=True)  # type: ignore[arg-type]
        shutil.rmtree(run_dir, ignore_errors=True)
        raise
    return run_id, job



def _write_run(run_dir: Path, table: EmbeddingTable, config: dict[str, Any]) -> str | None:
    """The run's files; returns the id of the projection its x/y will become (None without x/y)."""
    artifacts.write_npy(run_dir / artifacts.EMBEDDINGS, table.embedding)
    if table.labels is not None:
        artifacts.write_npy(run_dir / artifacts.LABELS, table.labels.astype(np.int64))
        artifacts.write_json(run_dir / artifacts.CLASS_NAMES, list(table.class_names or []))
    if table.metadata:
        write_metadata(run_dir / artifacts.METADATA, table.metadata)
    projection_id = None
    if table.coords is not None:
        projection_id = new_id("p")
        # coords.npy without meta.json: unfinished until the import job registers it.
        artifacts.write_npy(run_dir / artifacts.PROJECTIONS_DIR / projection_id / "coords.npy", table.coords)
    artifacts.write_json(run_dir / artifacts.CONFIG, config)
    return projection_id


def forget_images(registry: Registry, run_id: str) -> None:
    """Remove the images an import brought (dataset `import-<run id>`), when its run is deleted."""
    record = registry.get_dataset(f"{IMAGES_PREFIX}{run_id}")
    if record is not None:
        registry.forget_dataset(record.name)
        shutil.rmtree(record.path, ignore_errors=True)


def write_metadata(path: Path, columns: dict[str, np.ndarray]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrow = pa.table({name: pa.array(values.tolist() if values.dtype == object else values)
                      for name, values in columns.items()})
    artifacts.write_atomic(path, lambda handle: pq.write_table(arrow, handle))


def read_metadata(run_dir: Path) -> dict[str, np.ndarray]:
    """The run's imported metadata columns (float64 or object of str, N each); {} without any."""
    import pyarrow.parquet as pq

    path = Path(run_dir) / artifacts.METADATA
    if not path.is_file():
        return {}
    table = pq.read_table(path)
    return {name: (column.to_numpy() if column.type != "string" else
                   np.array(column.to_pylist(), dtype=object)) for name, column in zip(table.column_names, table.columns)}

