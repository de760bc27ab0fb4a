"""A run's per-point columns for the map page: imported metadata, sent compactly, and search.

Numeric columns go out as float32 like every per-point value (colour scale, range filter);
text columns with at most MAX_CATEGORIES distinct values as int32 codes plus their names (legend
colours, value filter). Text columns with more distinct values (ids, file names, captions) are
not sent — a million of them would outweigh the map — but `search` finds points by them, as by
class name. Columns are read once per file version (cached by modification time).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from ml import artifacts

MAX_CATEGORIES = 1000


@dataclass(frozen=True)
class RunColumns:
    """numeric: name → float32 (N,); text: name → (int32 codes (N,), distinct values in name order);
    `categorical` is the text columns few enough in values to colour and filter by."""

    numeric: dict[str, np.ndarray] = field(default_factory=dict)
    text: dict[str, tuple[np.ndarray, list[str]]] = field(default_factory=dict)

    @property
    def categorical(self) -> dict[str, tuple[np.ndarray, list[str]]]:
        return {name: coded for name, coded in self.text.items() if len(coded[1]) <= MAX_CATEGORIES}


def run_columns(run_dir: Path) -> RunColumns:
    """The imported metadata columns of a run (empty for trained runs)."""
    path = Path(run_dir) / artifacts.METADATA
    try:
        mtime = path.stat().st_mtime_ns
    except FileNotFoundError:
        return RunColumns()
    return _read(str(path), mtime)


@lru_cache(maxsize=8)
def _read(path: str, mtime_ns: int) -> RunColumns:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    columns = RunColumns()
    table = pq.read_table(path)
    for name, column in zip(table.column_names, table.columns):
        if pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
            columns.numeric[name] = column.to_numpy().astype(np.float32)
            continue
        encoded = pc.dictionary_encode(pc.fill_null(column.cast(pa.string()), "")).combine_chunks()
        names = encoded.dictionary.to_pylist()
        order = sorted(range(len(names)), key=lambda code: names[code])  # legends and lists in name order
        remap = np.empty(len(names), dtype=np.int32)
        remap[order] = np.arange(len(names), dtype=np.int32)
        columns.text[name] = (remap[encoded.indices.to_numpy(zero_copy_only=False)], [names[code] for code in order])
    return columns


def search(columns: RunColumns, labels: np.ndarray | None, class_names: list[str] | None, n: int,
           query: str) -> np.ndarray:
    """int64 indices (ascending) of the n points whose class name or any text column contains
    `query` (case-insensitive); each column's distinct values are matched once."""
    needle = query.casefold()
    found = np.zeros(n, dtype=bool)
    coded = list(columns.text.values())
    if labels is not None and class_names:
        coded.append((labels, [str(name) for name in class_names]))
    for codes, names in coded:
        hits = np.array([needle in name.casefold() for name in names] + [False], dtype=bool)  # code -1: no value
        found |= hits[np.where(codes >= 0, codes, len(names))]
    return np.flatnonzero(found)
