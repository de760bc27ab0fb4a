"""Readers and writers of embeddings in outside formats: npy, CSV/TSV, Parquet, TensorBoard projector.

`read_embeddings(path, format)` returns an `EmbeddingTable` (embedding, labels, metadata, images,
x/y) or raises `InterchangeError` naming the file and the problem; `write_parquet` and
`write_projector` write one out. No web, no registry: the app turns a table into a run.
"""
from __future__ import annotations

from pathlib import Path

from ml.interchange.delimited import DELIMITERS, read_delimited
from ml.interchange.npy import read_npy
from ml.interchange.parquet import read_parquet, write_parquet
from ml.interchange.projector import read_projector, write_projector
from ml.interchange.projector_config import CONFIG_FILE
from ml.interchange.table import EmbeddingTable, InterchangeError

FORMATS = ("npy", "csv", "tsv", "parquet", "projector")
_SUFFIXES = {".npy": "npy", ".csv": "csv", ".tsv": "tsv", ".txt": "tsv", ".parquet": "parquet", ".pq": "parquet",
             ".pbtxt": "projector"}
_MAGIC = {b"\x93NUMPY": "npy", b"PAR1": "parquet"}

__all__ = ["FORMATS", "EmbeddingTable", "InterchangeError", "detect_format", "read_embeddings", "write_parquet",
           "write_projector"]


def detect_format(path: Path) -> str:
    """The format of `path`: a folder with projector_config.pbtxt is a projector export; a file by its
    first bytes (npy, Parquet), else by its suffix (.csv, .tsv)."""
    path = Path(path)
    if path.is_dir():
        if (path / CONFIG_FILE).is_file():
            return "projector"
        raise InterchangeError(f"{path.name}: a folder without {CONFIG_FILE} (not a TensorBoard projector export)")
    if not path.is_file():
        raise InterchangeError(f"{path}: no such file or folder")
    with open(path, "rb") as handle:
        head = handle.read(6)
    for magic, name in _MAGIC.items():
        if head.startswith(magic):
            return name
    found = _SUFFIXES.get(path.suffix.lower())
    if found is None:
        raise InterchangeError(f"{path.name}: cannot tell its format; name one of {', '.join(FORMATS)}")
    return found


def read_embeddings(path: Path, format: str = "auto", *, labels_column: str | None = None,
                    image_column: str | None = None, embedding_column: str | None = None) -> EmbeddingTable:
    """Read the embedding (and what came with it) in `path`; `format` "auto" detects it."""
    path = Path(path)
    if format == "auto":
        format = detect_format(path)
    if format not in FORMATS:
        raise InterchangeError(f"unknown format {format!r}; choose auto or one of {', '.join(FORMATS)}")
    if not path.exists():
        raise InterchangeError(f"{path}: no such file or folder")
    if image_column is not None and format != "parquet":
        raise InterchangeError(f"--image-column is for Parquet files; {path.name} is {format}")
    if format == "npy":
        if labels_column is not None:
            raise InterchangeError(f"{path.name}: a .npy file has no columns, so no labels column {labels_column!r}")
        return read_npy(path)
    if format in DELIMITERS:
        return read_delimited(path, DELIMITERS[format], labels_column)
    if format == "parquet":
        return read_parquet(path, embedding_column, labels_column, image_column)
    return read_projector(path, labels_column)
