"""A NumPy `.npy` file holding one N × d array of numbers (no pickles)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ml.interchange.table import EmbeddingTable, InterchangeError


def read_npy(path: Path) -> EmbeddingTable:
    """The N × d embedding in `path` (any real number type; object arrays are refused)."""
    path = Path(path)
    try:
        array = np.load(path, allow_pickle=False, mmap_mode="r")
    except ValueError as exc:  # pickled object arrays, a bad header
        raise InterchangeError(f"{path.name}: not a plain .npy array of numbers ({exc})") from None
    except (OSError, EOFError) as exc:
        raise InterchangeError(f"{path.name}: not a readable .npy file ({exc})") from None
    if not isinstance(array, np.ndarray):
        raise InterchangeError(f"{path.name}: holds several arrays (.npz); save the embedding alone with numpy.save")
    if array.ndim != 2:
        raise InterchangeError(f"{path.name}: the array must be N × d (2-D), got shape {array.shape}")
    return EmbeddingTable(embedding=np.asarray(array)).checked(path.name)
