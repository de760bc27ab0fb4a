"""The IDX file format of MNIST and Fashion-MNIST (plain or gzip-compressed).

Read with numpy by hand because torchvision's reader (`read_sn3_pascalvincent_tensor`) needs the
whole file uncompressed, returns torch tensors, and reports corrupt files with bare asserts; here
a bad file becomes a DatasetError that names it, and headers can be read alone for listings.
"""
from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from ml.datasets.base import DatasetError

# Magic number: two zero bytes, a type code, the number of dimensions. Only unsigned bytes occur here.
UNSIGNED_BYTE = 0x08


def find_idx_file(directory: Path, stem: str) -> Path | None:
    """`directory/stem` or `directory/stem.gz` (the plain file first: it reads faster), or None."""
    for candidate in (directory / stem, directory / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def read_idx_shape(path: Path) -> tuple[int, ...]:
    """The array shape declared in the header of IDX file `path` (reads a few bytes only)."""
    with _open(path) as handle:
        return _read_header(handle, path)


def read_idx(path: Path) -> np.ndarray:
    """The uint8 array stored in IDX file `path`, e.g. N × 28 × 28 images or (N,) labels."""
    with _open(path) as handle:
        shape = _read_header(handle, path)
        expected = int(np.prod(shape, dtype=np.int64))
        try:
            data = handle.read(expected + 1)
        except (OSError, EOFError, zlib.error) as error:
            raise DatasetError(f"{path} is corrupt: {error}") from None
    if len(data) != expected:
        problem = "truncated" if len(data) < expected else "longer than its header says"
        raise DatasetError(f"{path} is {problem}: header declares {expected} bytes of data, found {len(data)}")
    return np.frombuffer(data, dtype=np.uint8).reshape(shape)


def _open(path: Path):
    try:
        return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")
    except OSError as error:
        raise DatasetError(f"cannot read {path}: {error.strerror or error}") from None


def _read_header(handle, path: Path) -> tuple[int, ...]:
    try:
        magic = handle.read(4)
        if len(magic) != 4 or magic[0] != 0 or magic[1] != 0 or magic[2] != UNSIGNED_BYTE or magic[3] == 0:
            raise DatasetError(f"{path} is not an IDX file of unsigned bytes (magic number {magic.hex() or 'missing'})")
        dims = handle.read(4 * magic[3])
    except (OSError, EOFError, zlib.error) as error:  # gzip.BadGzipFile is an OSError
        raise DatasetError(f"{path} is corrupt: {error}") from None
    if len(dims) != 4 * magic[3]:
        raise DatasetError(f"{path} is truncated: its header is incomplete")
    return tuple(int(size) for size in np.frombuffer(dims, dtype=">u4"))
