"""CSV and TSV: one numeric column per dimension, plus label and metadata columns (pyarrow's reader).

A header row is present when some cell of the first row is not a number; without one the columns
are `f0, f1, ...`. Which columns are dimensions: every numeric column except the labels column
and x/y (kept as map coordinates when both are numeric). A text column whose first value is a
number is taken for a dimension with a typo in it and refused, naming the value, rather than
silently becoming metadata and shrinking d.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from ml.interchange.columns import attach_columns, coordinate_columns, is_number, numbers
from ml.interchange.table import EmbeddingTable, InterchangeError, is_number_text, pick_label_column

DELIMITERS = {"csv": ",", "tsv": "\t"}


def read_delimited(path: Path, delimiter: str, labels_column: str | None = None) -> EmbeddingTable:
    """The embedding and columns of a CSV (`delimiter` ",") or TSV ("\\t") file."""
    path = Path(path)
    columns = read_columns(path, delimiter)
    label_column = pick_label_column(columns.column_names, labels_column, path.name)
    coordinates = coordinate_columns(columns) or ()
    dimensions = [name for name in columns.column_names
                  if name != label_column and name not in coordinates and is_number(columns[name])]
    for name in columns.column_names:
        if name not in dimensions and name != label_column:
            _refuse_typo(columns[name], path.name, name)
    if not dimensions:
        raise InterchangeError(f"{path.name}: no numeric column, so no dimension (d = 0)")
    embedding = np.stack([numbers(columns[name], path.name, name) for name in dimensions], axis=1)
    table = EmbeddingTable(embedding=embedding)
    return attach_columns(table, columns, label_column, path.name, skip=tuple(dimensions))


def read_columns(path: Path, delimiter: str, header: bool | None = None) -> pa.Table:
    """Every column of a delimited text file, types inferred; `header` None = detect it from row 1."""
    first_line = _first_line(path)
    if header is None:
        header = not all(is_number_text(cell) for cell in first_line.split(delimiter))
    read_options = pacsv.ReadOptions(autogenerate_column_names=not header, block_size=16 << 20)
    parse_options = pacsv.ParseOptions(delimiter=delimiter)
    # Only an empty cell is missing; "nan" and "inf" are read as numbers and refused as not finite.
    convert_options = pacsv.ConvertOptions(null_values=[""], strings_can_be_null=False)
    try:
        table = pacsv.read_csv(path, read_options=read_options, parse_options=parse_options,
                               convert_options=convert_options)
    except pa.ArrowException as exc:
        message = str(exc).replace("CSV parse error: ", "")
        if "Expected" in message and "columns" in message:
            message = f"a ragged row: {message}"
        raise InterchangeError(f"{path.name}: {message.splitlines()[0]}") from None
    if not header:
        table = table.rename_columns([f"f{index}" for index in range(table.num_columns)])
    if table.num_rows == 0:
        raise InterchangeError(f"{path.name}: no data rows (N = 0)")
    return table


def _first_line(path: Path) -> str:
    try:
        with open(path, "rb") as handle:
            raw = handle.readline(1 << 20)
    except OSError as exc:
        raise InterchangeError(f"{path.name}: cannot be read ({exc.strerror or exc})") from None
    try:
        line = raw.decode("utf-8-sig").rstrip("\r\n")
    except UnicodeDecodeError:
        raise InterchangeError(f"{path.name}: not a text file (its first line is not UTF-8)") from None
    if not line.strip():
        raise InterchangeError(f"{path.name}: is empty or starts with an empty line (N = 0)")
    return line


def _refuse_typo(column: pa.ChunkedArray, source: str, name: str) -> None:
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)) or len(column) == 0:
        return
    first = column[0].as_py()
    if first is None or not is_number_text(first):
        return
    for row, value in enumerate(column.to_pylist()):
        if value is not None and not is_number_text(value):
            raise InterchangeError(f"{source}: column {name!r} row {row + 1}: {value!r} is not a number")

