"""TensorBoard Embedding Projector folders: projector_config.pbtxt, tensors TSV, metadata TSV, sprite.

TensorBoard's rules, followed both ways: the tensors TSV has one row per point and no header; a
metadata TSV with one column has no header row, with two or more columns its first row is the
header; the sprite is a grid of `single_image_dim` tiles in row-major order. Paths in the config
are relative to the folder the config is in; a path leading outside that folder is refused.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
from google.protobuf import text_format

from ml import artifacts
from ml.interchange.columns import attach_columns, numbers
from ml.interchange.delimited import read_columns
from ml.interchange.projector_config import CONFIG_FILE, config_text, parse_config
from ml.interchange.sprite import read_sprite, sprite_image
from ml.interchange.table import EmbeddingTable, InterchangeError, is_number_text, pick_label_column

TENSORS_FILE, METADATA_FILE, SPRITE_FILE = "tensors.tsv", "metadata.tsv", "sprite.png"
SINGLE_COLUMN = "label"  # the name a one-column metadata file's values get


def read_projector(folder: Path, labels_column: str | None = None) -> EmbeddingTable:
    """The first embedding of a projector folder (or of the folder holding `folder` if it is the config)."""
    folder = Path(folder)
    if folder.is_file():
        folder = folder.parent
    config_path = folder / CONFIG_FILE
    if not config_path.is_file():
        raise InterchangeError(f"{folder.name}: no {CONFIG_FILE} in this folder; is it a TensorBoard projector export?")
    try:
        config = parse_config(config_path.read_text(encoding="utf-8"))
    except (text_format.ParseError, UnicodeDecodeError) as exc:
        raise InterchangeError(f"{CONFIG_FILE}: not a projector config ({exc})") from None
    infos = [info for info in config.embeddings if info.tensor_path]
    if not infos:
        raise InterchangeError(f"{CONFIG_FILE}: no embedding with a tensor_path (checkpoint tensors are not read)")
    info = infos[0]
    tensors = read_columns(_inside(folder, info.tensor_path, "tensor_path"), "\t", header=False)
    for name in tensors.column_names:
        column = tensors[name]
        if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)):
            bad = next(value for value in column.to_pylist() if not is_number_text(value))
            raise InterchangeError(f"{info.tensor_path}: {bad!r} in column {int(name[1:]) + 1} is not a number")
    embedding = np.stack([numbers(tensors[name], info.tensor_path, name) for name in tensors.column_names], axis=1)
    table = EmbeddingTable(embedding=embedding)
    columns = pa.table({})
    label_column = None
    if info.metadata_path:
        columns = _read_metadata(_inside(folder, info.metadata_path, "metadata_path"), len(embedding))
        names = columns.column_names
        label_column = SINGLE_COLUMN if names == [SINGLE_COLUMN] and labels_column is None else \
            pick_label_column(names, labels_column, info.metadata_path)
    elif labels_column is not None:
        raise InterchangeError(f"{CONFIG_FILE}: --labels-column {labels_column!r} given, but the config names no metadata")
    if info.sprite.image_path:
        table.images = read_sprite(_inside(folder, info.sprite.image_path, "sprite image_path"), len(embedding),
                                   tuple(info.sprite.single_image_dim) if len(info.sprite.single_image_dim) == 2 else (0, 0))
    return attach_columns(table, columns, label_column, folder.name)


def _inside(folder: Path, relative: str, field: str) -> Path:
    """`relative` under `folder`; refuses absolute paths, a way out with .., and missing files."""
    root = folder.resolve()
    path = (root / relative).resolve()
    if Path(relative).is_absolute() or not path.is_relative_to(root):
        raise InterchangeError(f"{CONFIG_FILE}: {field} {relative!r} leads outside the projector folder")
    if not path.is_file():
        raise InterchangeError(f"{CONFIG_FILE}: {field} {relative!r} names a file that is not in the folder")
    return path


def _read_metadata(path: Path, n: int) -> pa.Table:
    """The metadata TSV as text columns (numbers where a whole column is numeric), checked to have N rows."""
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except UnicodeDecodeError:
        raise InterchangeError(f"{path.name}: not a UTF-8 text file") from None
    lines = [line.rstrip("\r") for line in lines]
    if lines and lines[-1] == "":
        lines.pop()
    width = len(lines[0].split("\t")) if lines else 1
    header = [SINGLE_COLUMN] if width == 1 else lines[0].split("\t")
    rows = [line.split("\t") for line in (lines if width == 1 else lines[1:])]
    if len(rows) != n:
        raise InterchangeError(f"{path.name}: {len(rows)} metadata rows for {n} points"
                               f"{' (a file of two or more columns has a header row)' if width > 1 else ''}")
    for number, row in enumerate(rows, start=2 if width > 1 else 1):
        if len(row) != width:
            raise InterchangeError(f"{path.name}: a ragged row: line {number} has {len(row)} fields, the header {width}")
    columns = {}
    for index, name in enumerate(header):
        values = [row[index] for row in rows]
        numeric = all(is_number_text(value) for value in values) and name != SINGLE_COLUMN
        columns[name] = pa.array([float(value) for value in values] if numeric else values)
    return pa.table(columns)



def write_projector(folder: Path, table: EmbeddingTable, tensor_name: str = "embedding") -> Path:
    """Write a folder TensorBoard's projector loads: tensors.tsv, metadata.tsv (labels and metadata
    columns), sprite.png (when there are images) and projector_config.pbtxt. Returns the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rows = "\n".join("\t".join(repr(float(value)) for value in row) for row in table.embedding.tolist())
    artifacts.write_bytes(folder / TENSORS_FILE, (rows + "\n").encode("utf-8"))
    info: dict = {"tensor_name": tensor_name, "tensor_path": TENSORS_FILE, "tensor_shape": [table.n, table.dim]}
    columns = _metadata_columns(table)
    if columns:
        lines = [] if len(columns) == 1 else ["\t".join(columns)]
        lines += ["\t".join(values) for values in zip(*columns.values())]
        artifacts.write_bytes(folder / METADATA_FILE, ("\n".join(lines) + "\n").encode("utf-8"))
        info["metadata_path"] = METADATA_FILE
    if table.images is not None:
        sprite, tile = sprite_image(table.images)
        artifacts.write_atomic(folder / SPRITE_FILE, lambda handle: sprite.save(handle, format="PNG"))
        info["sprite"] = {"image_path": SPRITE_FILE, "single_image_dim": list(tile)}
    artifacts.write_bytes(folder / CONFIG_FILE, config_text([info]).encode("utf-8"))
    return folder


def _metadata_columns(table: EmbeddingTable) -> dict[str, list[str]]:
    """Column name → text per point: the labels first (as class names), then the metadata columns."""
    columns: dict[str, list[str]] = {}
    if table.labels is not None and table.class_names is not None:
        names = table.class_names
        columns[SINGLE_COLUMN] = [names[code] if code >= 0 else "" for code in table.labels.tolist()]
    for name, values in table.metadata.items():
        columns[name] = [_cell(value) for value in values.tolist()]
    return columns


def _cell(value: object) -> str:
    text = repr(value) if isinstance(value, float) else str(value)
    return text.replace("\t", " ").replace("\n", " ")
