"""Parquet (pyarrow): an embedding list column, labels, images and x/y, as Embedding Atlas and
Hugging Face datasets store them.

Read: the embedding is a list or fixed-size-list column of numbers named `embedding` or `vector`
(or the one asked for), every list of one length; labels come from the labels column; images from
a column of PNG/JPEG bytes, plain or as a struct {bytes, path} (Hugging Face's Image feature);
numeric `x` and `y` columns are map coordinates; other scalar columns are metadata.
Written by `write_parquet`: the same layout, plus every projection's and clustering's columns.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from PIL import Image

from ml import artifacts
from ml.datasets.folder import target_size
from ml.datasets.images import UnreadableImage, converted, is_grey, open_image
from ml.interchange.columns import attach_columns
from ml.interchange.table import EmbeddingTable, InterchangeError, pick_label_column

EMBEDDING_NAMES = ("embedding", "vector")
IMAGE_NAME = "image"
LABEL_NAME = "label"


def read_parquet(path: Path, embedding_column: str | None = None, labels_column: str | None = None,
                 image_column: str | None = None) -> EmbeddingTable:
    """The embedding, labels, images, x/y and metadata columns of a Parquet file."""
    path = Path(path)
    try:
        columns = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise InterchangeError(f"{path.name}: not a readable Parquet file ({str(exc).splitlines()[0]})") from None
    names = columns.column_names
    if columns.num_rows == 0:
        raise InterchangeError(f"{path.name}: no rows (N = 0)")
    embedding_name = _pick(names, embedding_column, EMBEDDING_NAMES, path.name, "embedding")
    if embedding_name is None:
        raise InterchangeError(f"{path.name}: no embedding column (a list column named {' or '.join(EMBEDDING_NAMES)},"
                               f" or --embedding-column); columns: {', '.join(names)}")
    table = EmbeddingTable(embedding=_embedding(columns[embedding_name], path.name, embedding_name))
    image_name = _pick(names, image_column, (IMAGE_NAME,), path.name, "images")
    if image_name is not None:
        table.images = _images(columns[image_name], path.name, image_name)
    label_name = pick_label_column(names, labels_column, path.name)
    return attach_columns(table, columns, label_name, path.name, skip=(embedding_name, image_name or ""))


def _pick(names: list[str], requested: str | None, defaults: tuple[str, ...], source: str, what: str) -> str | None:
    if requested is not None:
        if requested not in names:
            raise InterchangeError(f"{source}: no column {requested!r} for the {what}; columns: {', '.join(names)}")
        return requested
    return next((name for name in defaults if name in names), None)


def _embedding(column: pa.ChunkedArray, source: str, name: str) -> np.ndarray:
    """float N × d of a list / large list / fixed-size list column; ragged or missing lists are refused."""
    kind = column.type
    if not (pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind)):
        raise InterchangeError(f"{source}: column {name!r} is {kind}, not a list of numbers per row")
    if not (pa.types.is_integer(kind.value_type) or pa.types.is_floating(kind.value_type)):
        raise InterchangeError(f"{source}: column {name!r} holds lists of {kind.value_type}, not numbers")
    lists = column.combine_chunks()
    if lists.null_count:
        row = int(pc.index(pc.is_null(lists), True).as_py())
        raise InterchangeError(f"{source}: column {name!r} has no embedding at row {row + 1}")
    if pa.types.is_fixed_size_list(kind):
        dim = kind.list_size
    else:
        lengths = pc.list_value_length(lists).to_numpy()
        dim = int(lengths[0])
        unequal = np.flatnonzero(lengths != dim)
        if len(unequal):
            row = int(unequal[0])
            raise InterchangeError(f"{source}: column {name!r} has lists of unequal length: row 1 has {dim} values,"
                                   f" row {row + 1} has {int(lengths[row])}")
    values = lists.flatten()
    if values.null_count:
        raise InterchangeError(f"{source}: column {name!r} has a missing value inside an embedding")
    return values.to_numpy(zero_copy_only=False).reshape(len(lists), dim)


def _images(column: pa.ChunkedArray, source: str, name: str) -> np.ndarray:
    """uint8 N × H × W × C of a column of encoded PNG/JPEG images, all brought to one size and mode."""
    kind = column.type
    if pa.types.is_struct(kind) and kind.get_field_index("bytes") >= 0:
        column = pc.struct_field(column, "bytes")
    elif not (pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type)):
        raise InterchangeError(f"{source}: column {name!r} is {kind}, not image bytes (binary, or a struct {{bytes, path}})")
    decoded = []
    for row, data in enumerate(column.to_pylist()):
        if data is None:
            raise InterchangeError(f"{source}: column {name!r} has no image at row {row + 1}")
        try:
            decoded.append(open_image(io.BytesIO(data)))
        except UnreadableImage as exc:
            raise InterchangeError(f"{source}: column {name!r} row {row + 1}: {exc.reason}") from None
    size = target_size([image.size for image in decoded])
    mode = "L" if all(is_grey(image) for image in decoded) else "RGB"
    pixels = np.empty((len(decoded), size[1], size[0], 1 if mode == "L" else 3), dtype=np.uint8)
    for row, image in enumerate(decoded):
        image = converted(image, mode)
        if image.size != size:
            image = image.resize(size)
        pixels[row] = np.asarray(image).reshape(size[1], size[0], -1)
    return pixels


def write_parquet(path: Path, table: EmbeddingTable, projections: dict[str, np.ndarray] | None = None,
                  clusterings: dict[str, np.ndarray] | None = None) -> Path:
    """Write `table` as Parquet: `embedding` (fixed-size list of float32), `label` (dictionary of the
    class names, in their order), `x`/`y` (table.coords), the metadata columns, `image` (PNG bytes
    struct) when there are images, and per projection id `projection.<id>.x/.y`, per clustering id
    `clustering.<id>` (int64, -1 = noise)."""
    n = table.n
    flat = pa.array(np.ascontiguousarray(table.embedding, dtype=np.float32).reshape(-1))
    columns: dict[str, pa.Array] = {"embedding": pa.FixedSizeListArray.from_arrays(flat, table.dim)}
    if table.labels is not None and table.class_names is not None:
        codes = pa.array(table.labels.astype(np.int32), mask=table.labels < 0)
        columns[LABEL_NAME] = pa.DictionaryArray.from_arrays(codes, pa.array(table.class_names, pa.string()))
    if table.coords is not None:
        columns["x"], columns["y"] = pa.array(table.coords[:, 0]), pa.array(table.coords[:, 1])
    for name, values in table.metadata.items():
        columns[name] = pa.array(values.tolist() if values.dtype == object else values)
    for projection_id, coords in (projections or {}).items():
        columns[f"projection.{projection_id}.x"] = pa.array(np.asarray(coords[:, 0], dtype=np.float32))
        columns[f"projection.{projection_id}.y"] = pa.array(np.asarray(coords[:, 1], dtype=np.float32))
    for clustering_id, labels in (clusterings or {}).items():
        columns[f"clustering.{clustering_id}"] = pa.array(np.asarray(labels, dtype=np.int64))
    if table.images is not None:
        columns[IMAGE_NAME] = pa.StructArray.from_arrays(
            [pa.array([_png(table.images[row]) for row in range(n)], pa.binary()),
             pa.array([f"{row}.png" for row in range(n)], pa.string())], names=["bytes", "path"])
    arrow = pa.table(columns)
    return artifacts.write_atomic(Path(path), lambda handle: pq.write_table(arrow, handle))


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels).save(buffer, format="PNG")
    return buffer.getvalue()
