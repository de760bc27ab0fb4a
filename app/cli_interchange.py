"""`latentmap import` and `latentmap export`: embeddings in and out in the formats people already have.

import reads and checks the file, lands the run and runs its `import` job in this process (the
default analyses it queues are run by a server's workers: the map of an import without x/y is
computed once `latentmap serve` runs, or at once with `latentmap project`). A refused file exits 2
with one line and leaves no run behind.
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

from ml.interchange import FORMATS

IMPORT_HELP = "read embeddings computed elsewhere (npy, CSV/TSV, Parquet, TensorBoard projector folder) as a run"


def add_parsers(commands: Any, common: argparse.ArgumentParser, json_flag: argparse.ArgumentParser) -> None:
    """Add the import and export sub-commands to the `latentmap` parser."""
    imported = commands.add_parser("import", parents=[common, json_flag], help=IMPORT_HELP)
    imported.add_argument("path", metavar="PATH", type=Path, help="a file, or a projector folder (or its config)")
    imported.add_argument("--format", default="auto", choices=("auto", *FORMATS))
    imported.add_argument("--name", default=None, help="what the run is called on the dashboard")
    imported.add_argument("--labels-column", default=None, metavar="COL",
                          help="the column of labels (default: one named label, labels, class, category or target)")
    imported.add_argument("--image-column", default=None, metavar="COL",
                          help="Parquet: the column of PNG/JPEG bytes (default: image)")
    imported.add_argument("--embedding-column", default=None, metavar="COL",
                          help="Parquet: the list column of the embedding (default: embedding or vector)")
    imported.add_argument("--dataset", default=None, metavar="NAME",
                          help="a dataset with one image per point, in the same order")
    exported = commands.add_parser("export", parents=[common], help="write a run as Parquet or a TensorBoard projector folder")
    exported.add_argument("run_id", metavar="RUN_ID")
    exported.add_argument("--format", required=True, choices=("parquet", "projector"))
    exported.add_argument("out", metavar="OUT", type=Path, help="the .parquet file, or the projector folder, to write")


def cmd_import(args: argparse.Namespace) -> int:
    from app.cli import UsageError, _emit, _registry, _run_in_process, _settings
    from app.dataset_source import open_dataset
    from app.imports import ImportOptions, ImportRefused, land_import, matched_dataset, read_import
    from ml.interchange import detect_format

    settings = _settings(args)
    registry = _registry(settings)
    started = time.perf_counter()
    try:
        options = ImportOptions(format=args.format, name=args.name, labels_column=args.labels_column,
                                image_column=args.image_column, embedding_column=args.embedding_column,
                                dataset=args.dataset)
        table = read_import(args.path, options)
        dataset = matched_dataset(table, options, registry, settings.datasets_dir,
                                  lambda name: open_dataset(name, registry, settings.datasets_dir))
        source_format = options.format if options.format != "auto" else detect_format(args.path)
    except ImportRefused as exc:
        raise UsageError(str(exc)) from None
    follow_ups = {"projection": settings.default_projection, "clustering": settings.default_clustering}
    run_id, job = land_import(registry, settings.data_dir, settings.uploads_dir, table, options, dataset, source_format,
                              args.path.name, follow_ups=follow_ups, status="running", worker_pid=os.getpid())
    metrics = _run_in_process(registry, settings, job, "import").result["output"]
    run = registry.get_run(run_id)
    assert run is not None
    projection = next((row.id for row in registry.list_projections(run_id) if row.status == "succeeded"), None)
    payload = {"run_id": run_id, "n": table.n, "dim": table.dim, "has_labels": run.config["has_labels"],
               "has_images": run.config["has_images"], "format": source_format, "dataset": run.dataset,
               "projection_id": projection, "knn_accuracy": metrics.get("knn_accuracy"),
               "linear_probe_accuracy": metrics.get("linear_probe_accuracy"),
               "seconds": round(time.perf_counter() - started, 3)}
    _emit(args, payload, f"run {run_id}: imported {table.n} × {table.dim} from {args.path.name} ({source_format})"
                         f"{', labelled' if payload['has_labels'] else ''}{', with images' if payload['has_images'] else ''}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from app.cli import UsageError, _registry, _settings
    from app.dataset_source import open_dataset
    from app.exports import ExportRefused, export_run

    settings = _settings(args)
    registry = _registry(settings)
    run = registry.get_run(args.run_id)
    if run is None:
        raise UsageError(f"no run with id {args.run_id!r}; `latentmap runs` lists them")
    try:
        out = export_run(run, registry, lambda name: open_dataset(name, registry, settings.datasets_dir),
                         args.format, args.out)
    except ExportRefused as exc:
        raise UsageError(str(exc)) from None
    print(f"run {run.id} written to {out} ({args.format})")
    return 0


COMMANDS = {"import": cmd_import, "export": cmd_export}
