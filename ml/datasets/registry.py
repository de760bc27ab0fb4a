"""Maps a dataset name (or `folder:PATH`) to its loader."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from ml.datasets.base import DatasetError, ImageDataset
from ml.datasets.digits import load_digits

LOADERS: dict[str, Callable[[], ImageDataset]] = {"digits": load_digits}


def load_dataset(name: str, datasets_dir: Path | None = None) -> ImageDataset:
    """Load dataset `name`; raises DatasetError with a message a person can act on."""
    if name in LOADERS:
        return LOADERS[name]()
    raise DatasetError(f"unknown dataset {name!r}; known: {', '.join(LOADERS)} or folder:PATH")
