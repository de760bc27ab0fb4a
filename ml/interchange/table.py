"""What every reader returns and every writer takes: an embedding with its per-point columns.

Each reader checks what it can only check in its own format (a ragged row, a list column of
unequal lengths, a sprite that does not fit); `EmbeddingTable.checked` then applies the checks
every format shares (finite values, N and d above zero, one row of everything per point), so a
table that exists is usable by every analysis.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Column names taken as the labels when no labels column is named (case-insensitive).
LABEL_NAMES = ("label", "labels", "class", "category", "target")
# Coordinates given with an embedding: registered as a projection (method `imported`).
X_COLUMN, Y_COLUMN = "x", "y"


class InterchangeError(ValueError):
    """A file that cannot be imported; the message names the file and the problem (for a person)."""


@dataclass
class EmbeddingTable:
    """An embedding computed elsewhere, with what came with it.

    embedding: float32 N × d, finite.
    labels: int64 (N,) indices into class_names (-1 = no label), or None.
    class_names: one name per label value, or None.
    metadata: column name → (N,) array, float64 (numeric column) or object of str (categorical).
    images: uint8 N × H × W × C (C = 1 or 3), or None.
    coords: float32 N × 2 map coordinates that came with the embedding (x, y), or None.
    """

    embedding: np.ndarray
    labels: np.ndarray | None = None
    class_names: list[str] | None = None
    metadata: dict[str, np.ndarray] = field(default_factory=dict)
    images: np.ndarray | None = None
    coords: np.ndarray | None = None

    @property
    def n(self) -> int:
        return int(self.embedding.shape[0])

    @property
    def dim(self) -> int:
        return int(self.embedding.shape[1])

    def checked(self, source: str) -> "EmbeddingTable":
        """This table after the checks every format shares; InterchangeError names `source` and the problem."""
        embedding = self.embedding
        if embedding.ndim != 2:
            raise InterchangeError(f"{source}: the embedding must be a table of N rows × d numbers, got shape {embedding.shape}")
        n, dim = embedding.shape
        if n == 0:
            raise InterchangeError(f"{source}: the embedding has no rows (N = 0)")
        if dim == 0:
            raise InterchangeError(f"{source}: the embedding has no dimensions (d = 0)")
        self.embedding = _finite_float32(embedding, source, "the embedding")
        if self.coords is not None:
            self.coords = _finite_float32(self.coords, source, "the x/y columns")
        for name, array in (("labels", self.labels), ("images", self.images), ("x/y", self.coords),
                            *((f"metadata column {key!r}", value) for key, value in self.metadata.items())):
            if array is not None and len(array) != n:
                raise InterchangeError(f"{source}: {name} has {len(array)} rows, the embedding has {n}")
        if self.labels is not None:
            self.labels = np.asarray(self.labels, dtype=np.int64)
            if self.class_names is None or self.labels.max(initial=-1) >= len(self.class_names):
                raise InterchangeError(f"{source}: labels need one class name per label value")
        return self


def _finite_float32(values: np.ndarray, source: str, what: str) -> np.ndarray:
    array = np.asarray(values)
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise InterchangeError(f"{source}: {what} holds non-numeric values ({array.dtype})")
    array = np.ascontiguousarray(array, dtype=np.float32)
    bad = ~np.isfinite(array)
    if bad.any():
        row, column = np.argwhere(bad)[0] if array.ndim == 2 else (int(np.flatnonzero(bad)[0]), 0)
        value = array[row, column] if array.ndim == 2 else array[row]
        raise InterchangeError(f"{source}: {what} holds {value} (NaN or infinity) at row {int(row) + 1},"
                               f" column {int(column) + 1}; every value must be a finite number")
    return array


def encode_labels(values: np.ndarray, categories: list[str] | None = None) -> tuple[np.ndarray, list[str]]:
    """(int64 codes, class names) of a column of label values; missing values (None, "") get -1.

    `categories` keeps a given order (a Parquet dictionary, class names written by an export);
    otherwise the names are sorted, numerically when every one is a whole number (2 before 10).
    """
    text = np.array(["" if value is None else _label_text(value) for value in values], dtype=object)
    present = text != ""
    if categories is None:
        unique = sorted(set(text[present].tolist()))
        if all(_is_int(name) for name in unique):
            unique.sort(key=int)
        categories = unique
    index = {name: code for code, name in enumerate(categories)}
    unknown = [name for name in set(text[present].tolist()) if name not in index]
    if unknown:
        raise InterchangeError(f"label {unknown[0]!r} is not among the class names")
    codes = np.fromiter((index.get(name, -1) for name in text.tolist()), dtype=np.int64, count=len(text))
    return codes, list(categories)


def _label_text(value: object) -> str:
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value).strip()


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def pick_label_column(names: list[str], requested: str | None, source: str) -> str | None:
    """The labels column: `requested` (must exist), else the first named like a label, else None."""
    if requested is not None:
        if requested not in names:
            raise InterchangeError(f"{source}: no column {requested!r} for the labels; columns: {', '.join(names) or 'none'}")
        return requested
    lowered = {name.lower(): name for name in names}
    return next((lowered[name] for name in LABEL_NAMES if name in lowered), None)


def is_number_text(text: object) -> bool:
    """Whether `text` reads as a number (as Python's float() reads it: "1e-3", "nan", "inf" do)."""
    try:
        float(str(text))
    except ValueError:
        return False
    return True
