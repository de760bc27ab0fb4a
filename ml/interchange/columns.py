"""From named columns (a pyarrow table: CSV, TSV, Parquet, metadata TSV) to labels, x/y and metadata."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ml.interchange.table import X_COLUMN, Y_COLUMN, EmbeddingTable, InterchangeError, encode_labels


def is_number(column: pa.ChunkedArray | pa.Array) -> bool:
    return pa.types.is_integer(column.type) or pa.types.is_floating(column.type)


def is_scalar(column: pa.ChunkedArray | pa.Array) -> bool:
    """A column a map can colour or filter by: numbers, text, booleans or a dictionary of text."""
    kind = column.type
    return (is_number(column) or pa.types.is_string(kind) or pa.types.is_large_string(kind)
            or pa.types.is_boolean(kind) or pa.types.is_dictionary(kind))


def coordinate_columns(table: pa.Table) -> tuple[str, str] | None:
    """("x", "y") when the table has both as numbers, else None."""
    names = table.column_names
    if X_COLUMN in names and Y_COLUMN in names and is_number(table[X_COLUMN]) and is_number(table[Y_COLUMN]):
        return X_COLUMN, Y_COLUMN
    return None


def numbers(column: pa.ChunkedArray, source: str, name: str) -> np.ndarray:
    """float64 (N,) of a numeric column; a missing value is refused naming its row."""
    if column.null_count:
        row = int(pc.index(pc.is_null(column), True).as_py())
        raise InterchangeError(f"{source}: column {name!r} has no value at row {row + 1}")
    return column.to_numpy().astype(np.float64, copy=False)


def attach_columns(table: EmbeddingTable, columns: pa.Table, label_column: str | None, source: str,
                   skip: tuple[str, ...] = ()) -> EmbeddingTable:
    """Fill `table`'s labels, coords and metadata from `columns` (the ones not in `skip`), then check it.

    The labels column becomes (codes, class names) — a dictionary column keeps its order; x and y
    (both numeric) become the coordinates; every other scalar column becomes metadata: numbers as
    float64 (missing = NaN), anything else as text (missing = "").
    """
    if label_column is not None:
        column = columns[label_column]
        categories = None
        if pa.types.is_dictionary(column.type):
            categories = [str(value) for value in column.chunk(0).dictionary.to_pylist()] if column.num_chunks else []
        try:
            table.labels, table.class_names = encode_labels(column.to_numpy(zero_copy_only=False), categories)
        except InterchangeError as exc:
            raise InterchangeError(f"{source}: column {label_column!r}: {exc}") from None
    coordinates = coordinate_columns(columns)
    if coordinates is not None:
        table.coords = np.stack([numbers(columns[name], source, name) for name in coordinates], axis=1)
    taken = {label_column, *(coordinates or ()), *skip}
    for name in columns.column_names:
        column = columns[name]
        if name in taken or not is_scalar(column):
            continue
        if is_number(column):
            table.metadata[name] = column.to_numpy(zero_copy_only=False).astype(np.float64)
        else:
            text = column.cast(pa.string()) if not pa.types.is_dictionary(column.type) else column
            values = text.to_numpy(zero_copy_only=False)
            table.metadata[name] = np.array(["" if value is None else str(value) for value in values], dtype=object)
    return table.checked(source)
